"""The learner's commands: check, watch, hint, grade, and the playground (airflow, steer)."""
