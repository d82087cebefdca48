"""Your code: one module per exercise. The tests grade it with `pytest --target=starter`."""
