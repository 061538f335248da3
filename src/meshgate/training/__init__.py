"""The closed loop: training sets built from the event log, and training jobs that register
new versions with their lineage."""
