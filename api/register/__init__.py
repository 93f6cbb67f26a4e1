"""The grid register (issue 12): staff, households, residents, key persons, party organisation."""
