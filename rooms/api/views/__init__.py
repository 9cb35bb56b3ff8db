"""REST views under ``/api/video/``: one view class per path, one method per operation."""
