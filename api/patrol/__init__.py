"""Patrol (巡查): devices, fixes and their intake, coverage reports (issue 14)."""
