from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    label = "parley_media"
    verbose_name = "Media"
