"""Patrol (巡查) in pure form: cleaning GPS fixes, stops, sessions and building coverage.

No Flask, no database: frames of fixes in, cleaned frames, counts and coverage tables out.
``api.patrol`` stores fixes and hands them here.
"""
