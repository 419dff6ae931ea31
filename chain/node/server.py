"""The gRPC server of a node: the client API, health checking and server reflection."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chain.node.api import NodeApi
from proto import node_pb2, node_pb2_grpc

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class ApiServer:
    """Serves NodeApi on host:port; `health` is NOT_SERVING until `mark_serving`."""

    def __init__(self, api: NodeApi, host: str, port: int, workers: int = 16):
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        node_pb2_grpc.add_NodeServicer_to_server(api, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service_names = (
            node_pb2.DESCRIPTOR.services_by_name["Node"].full_name,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(service_names, self.server)
        self.address = f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio reports a failed bind this way
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {self.address} (in use, or not an address of this machine)")
        self._set_status(health_pb2.HealthCheckResponse.NOT_SERVING)

    def _set_status(self, status) -> None:
        self.health.set("", status)
        self.health.set(node_pb2.DESCRIPTOR.services_by_name["Node"].full_name, status)

    def start(self) -> None:
        self.server.start()

    def mark_serving(self) -> None:
        self._set_status(health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
