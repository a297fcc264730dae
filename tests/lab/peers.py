"""Real peers for the ward lab, run inside a device's namespace: ``python peers.py <role> args…``.

- ``hl7apy-server PORT APP FACILITY``: hl7apy's MLLP server, answering every message with an ACK.
- ``hl7-server PORT APP FACILITY``: python-hl7's asyncio MLLP server, the same.
- ``hl7-send HOST PORT FILE``: python-hl7's asyncio MLLP client, sending every message of FILE, awaiting ACKs.
- ``dicom-scp PORT AE``: a pynetdicom storage SCP (and verification) that keeps nothing.
- ``dicom-store HOST PORT CALLING CALLED FILE…``: a pynetdicom storage SCU.
"""

from __future__ import annotations

import asyncio
import sys

import hl7
from hl7.mllp import open_hl7_connection, start_hl7_server


def ack(text: str, app: str, facility: str) -> str:
    return str(hl7.parse(text).create_ack(application=app, facility=facility))


def hl7apy_server(port: int, app: str, facility: str) -> None:
    from hl7apy.mllp import AbstractHandler, MLLPServer

    class Ack(AbstractHandler):  # type: ignore[misc]
        def reply(self) -> str:
            return "\x0b" + ack(self.incoming_message, app, facility) + "\x1c\r"

    class EveryType(dict[str, tuple[type, ...]]):
        """hl7apy routes by MSH-9 as sent (``ORU^R01^ORU_R01``): acknowledge every type."""

        def __missing__(self, key: str) -> tuple[type, ...]:
            return (Ack,)

    server = MLLPServer("0.0.0.0", port, EveryType())  # noqa: S104 - inside the lab namespace
    server.serve_forever()


def hl7_server(port: int, app: str, facility: str) -> None:
    async def handle(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                writer.writemessage(hl7.parse(ack(str(message), app, facility)))
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    async def main() -> None:
        server = await start_hl7_server(handle, "0.0.0.0", port)  # noqa: S104
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def hl7_send(host: str, port: int, path: str) -> None:
    with open(path, encoding="utf-8") as f:
        messages = [m.strip("\n") for m in f.read().split("\n\n") if m.strip()]

    async def main() -> None:
        reader, writer = await open_hl7_connection(host, port)
        for text in messages:
            writer.writemessage(hl7.parse(text.replace("\n", "\r")))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readmessage(), 20)
            print("ack", str(reply.segment("MSA")[1]))
        writer.close()
        await writer.wait_closed()

    asyncio.run(main())


def dicom_scp(port: int, ae_title: str) -> None:
    from pynetdicom import AE, evt
    from pynetdicom.presentation import AllStoragePresentationContexts
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    ae.start_server(("0.0.0.0", port), block=True, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])  # noqa: S104


def dicom_store(host: str, port: int, calling: str, called: str, files: list[str]) -> None:
    from pydicom import dcmread
    from pynetdicom import AE

    datasets = [dcmread(f) for f in files]
    ae = AE(ae_title=calling)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        raise SystemExit(f"association to {called} at {host}:{port} not established")
    for ds in datasets:
        status = assoc.send_c_store(ds)
        print("c-store", hex(status.Status))
    assoc.release()


def main(argv: list[str]) -> None:
    role, args = argv[0], argv[1:]
    if role == "hl7apy-server":
        hl7apy_server(int(args[0]), args[1], args[2])
    elif role == "hl7-server":
        hl7_server(int(args[0]), args[1], args[2])
    elif role == "hl7-send":
        hl7_send(args[0], int(args[1]), args[2])
    elif role == "dicom-scp":
        dicom_scp(int(args[0]), args[1])
    elif role == "dicom-store":
        dicom_store(args[0], int(args[1]), args[2], args[3], args[4:])
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1:])
