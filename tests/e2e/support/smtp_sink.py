"""A real SMTP server for tandem's email tests, on 127.0.0.1 (Debian's python3-aiosmtpd).

Run with /usr/bin/python3 (the interpreter that sees Debian's modules). It listens on a
free port, prints `PORT <n>` on its first line once it accepts connections, and saves each
message it accepts to DIR as `<n>.json`: the envelope (`mail_from`, `rcpt_tos`), the
user it logged in (`login`), the decoded headers (`subject`, `from`, `to`) and `body`.

  --refuse-rcpt        answer every RCPT TO with 550 (a server that refuses the mail)
  --auth USER:PASS     require a login (AUTH PLAIN/LOGIN, allowed without TLS); a wrong
                       password gets 535
  --starttls CERT KEY  offer STARTTLS with this certificate
  --tls CERT KEY       TLS from the first byte with this certificate
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, folder, refuse_rcpt):
        self.folder = folder
        self.refuse_rcpt = refuse_rcpt
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return "550 5.1.1 <%s>: mailbox unavailable (refused by the test server)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.authenticated else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "body": msg.get_content(),
        }
        self.count += 1
        path = os.path.join(self.folder, "%d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--refuse-rcpt", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--starttls", nargs=2)
    p.add_argument("--tls", nargs=2)
    a = p.parse_args()
    sink = Sink(a.dir, a.refuse_rcpt)
    kwargs = {"hostname": "sink.test", "auth_require_tls": False}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(auth_required=True, authenticator=authenticator(user, password))
    if a.starttls:
        kwargs["tls_context"] = tls_context(*a.starttls)
    wrapped = tls_context(*a.tls) if a.tls else None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, **kwargs), "127.0.0.1", 0, ssl=wrapped
    )
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
