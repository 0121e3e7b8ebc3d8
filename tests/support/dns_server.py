"""A stub DNS server on a real UDP socket (127.0.0.1, a free port) that answers TXT and A
queries from a dict, or stays silent to make resolvers time out. Never touches real DNS."""
from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class StubDns:
    def __init__(self, txt: dict[str, list[str]] | None = None, silent: bool = False) -> None:
        self.txt = {k.lower().rstrip("."): v for k, v in (txt or {}).items()}
        self.silent = silent
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> StubDns:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            self.queries.append(f"{dns.rdatatype.to_text(question.rdtype)} {name}")
            if self.silent:
                continue
            response = dns.message.make_response(query)
            if question.rdtype == dns.rdatatype.TXT and name in self.txt:
                # One record per value: split long values into 250-character strings.
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 300, "IN", "TXT",
                    [" ".join('"' + v[i:i + 250] + '"' for i in range(0, len(v), 250)) for v in self.txt[name]]))
            elif not any(k == name or k.endswith("." + name) for k in self.txt):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._sock.sendto(response.to_wire(), peer)
