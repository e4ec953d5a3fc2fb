"""ASGI entry point: WebSockets in production (daphne); HTTP and WebSockets in the embedded default."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector_site.settings.base")

# Build the HTTP application first: it sets Django up before consumers import models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from streams.embedded import with_embedded_streams  # noqa: E402
from streams.routing import websocket_urlpatterns  # noqa: E402

# with_embedded_streams: in the embedded default (STREAMS_IN_PROCESS) the stream manager
# runs on this process's event loop, started on first use; otherwise it is a no-op.
application = with_embedded_streams(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
