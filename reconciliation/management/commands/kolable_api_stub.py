"""Serve the Kolable orders API contract locally from generated orders, for
trying the sync by hand and for the tests (reconciliation/kolable_stub.py).

    python manage.py kolable_api_stub --port 18130 --orders 2000
    python manage.py kolable_api_stub --port 18130 --orders 2000 --change-every 60 --changes 25
    curl -X POST -H 'Authorization: Bearer stub-token' 'http://127.0.0.1:18130/_stub/advance?changes=10'
"""

from django.core.management.base import BaseCommand

from reconciliation.kolable_stub import Faults, KolableApiStub


class Command(BaseCommand):
    help = "Serve a local Kolable orders API from generated orders (statuses change over time)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=18130)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--orders", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--token", default="stub-token")
        parser.add_argument(
            "--fail-429", type=float, default=0.0, help="share of requests answered 429"
        )
        parser.add_argument(
            "--fail-5xx", type=float, default=0.0, help="share of requests answered 503"
        )
        parser.add_argument("--fail-auth", action="store_true", help="answer every request 401")
        parser.add_argument("--retry-after", type=float, default=1.0)
        parser.add_argument(
            "--page-delay", type=float, default=0.0, help="seconds before each page"
        )
        parser.add_argument(
            "--change-every", type=float, default=0.0, help="move --changes orders every N seconds"
        )
        parser.add_argument("--changes", type=int, default=0)

    def handle(self, *args, **options):
        stub = KolableApiStub(
            orders=options["orders"],
            seed=options["seed"],
            port=options["port"],
            host=options["host"],
            token=options["token"],
            faults=Faults(
                fail_429=options["fail_429"],
                fail_5xx=options["fail_5xx"],
                fail_auth=options["fail_auth"],
                retry_after=options["retry_after"],
                page_delay=options["page_delay"],
            ),
            change_every=options["change_every"],
            changes=options["changes"],
        )
        self.stdout.write(
            f"Kolable API stub: {options['orders']:,} orders (seed {options['seed']}) on "
            f"http://{options['host']}:{stub.port}/v1/orders, token {options['token']!r} "
            "(Ctrl-C stops)"
        )
        try:
            stub.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            stub.server.server_close()
