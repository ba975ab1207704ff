"""Azure Blob static-website endpoint in the lab (Azurite has none).

Like `<account>.z12.web.core.windows.net`, it serves the `$web` container without credentials from
the caller: `/` and folder paths map to the index document, a missing blob to the 404 document
(or a plain 404). It reads the blobs with the account key, as the real endpoint serves `$web`
whatever the container's access level.
"""
from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from lab.httpfwd import Request, Response, Server

INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "404.html"


class StaticWebsite:
    def __init__(self, port: int, connection_string: str) -> None:
        self._svc = BlobServiceClient.from_connection_string(connection_string)
        self.server = Server(port, self.handle)

    def start(self) -> StaticWebsite:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _get(self, name: str) -> tuple[bytes, str] | None:
        try:
            blob = self._svc.get_blob_client("$web", name).download_blob()
        except ResourceNotFoundError:
            return None
        ctype = blob.properties.content_settings.content_type or "application/octet-stream"
        return blob.readall(), ctype

    def handle(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return Response(405, [("Content-Type", "text/plain")], b"The requested method is not allowed.")
        path = req.path.split("?", 1)[0].lstrip("/")
        if path == "" or path.endswith("/"):
            path += INDEX_DOCUMENT
        found = self._get(path)
        if found is not None:
            return Response(200, [("Content-Type", found[1]), ("x-ms-version", "2021-08-06")], found[0])
        error = self._get(ERROR_DOCUMENT)
        if error is not None:
            return Response(404, [("Content-Type", error[1])], error[0])
        return Response(404, [("Content-Type", "text/html")], b"<h1>The requested content does not exist.</h1>")
