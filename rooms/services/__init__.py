"""Writes of the rooms domain, one module per aggregate (HackSoft style: keyword-only ``noun_verb``)."""
