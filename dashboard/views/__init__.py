"""Dashboard views: operators' console and moderators' desk. Each view is decorated by
``dashboard.access.console_view`` and calls ``rooms.services`` for every write."""
