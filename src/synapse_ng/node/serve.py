"""Run one node in this process: the FastAPI app under uvicorn (which handles SIGINT/SIGTERM: a clean
stop)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .config import NodeConfig
from .node import Node


def serve(config: NodeConfig, *, log_level: str = "warning", provider=None) -> None:
    node = Node.open(config, provider=provider)
    app = create_app(node)
    server = uvicorn.Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, lifespan="on")
    )
    server.run()
