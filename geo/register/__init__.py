"""The grid register in pure form: ID numbers, masking, column mapping, row checks, matching.

No Flask, no database: frames in, frames and problem lists out. ``api.register`` stores
what these functions accept.
"""
