"""Segments: features, RFM, conditions, holdouts, membership history and audience export."""
