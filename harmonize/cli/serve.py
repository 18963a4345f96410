"""``harmonize serve``: the review page in a browser, over the workspace."""

from __future__ import annotations

import click

from harmonize.cli.base import State, cli, pass_state


@cli.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; one other machines can reach needs --allow-remote.",
)
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free).")
@click.option(
    "--reviewer",
    help="Who decides, by default (default: $HARMONIZE_REVIEWER or "
    "login name); the page can change it.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other machines can reach (writes still need the token).",
)
@pass_state
def serve_cmd(state: State, host: str, port: int, reviewer: str | None,
              allow_remote: bool) -> None:  # fmt: skip
    """Review mappings in a web browser: the queue in review order, accept / reject / set,
    bulk accept, filters, coverage. Decisions go to the same table as 'harmonize accept'.

    Prints the page's address with its token; Ctrl-C stops the server.

    \b
    Example:
      harmonize --workspace demo-workspace serve --reviewer ana
    """
    try:
        from harmonize.serve.server import bind, make_server
    except ImportError as exc:
        from harmonize.core.errors import HarmonizeError

        raise HarmonizeError(
            f"'harmonize serve' needs the serve extra ({exc.name} is missing): "
            "pip install 'harmonize[serve]'"
        ) from None
    from harmonize.serve.security import is_loopback, new_token

    state.ws.require()
    sock = bind(host, port, allow_remote)
    running = make_server(state.ws, sock, new_token(), reviewer, is_loopback(host))
    click.echo(f"Reviewing workspace {state.ws.root}")
    click.echo(f"Open {running.page_url}")
    click.echo(f"API token (header X-Harmonize-Token): {running.token}")
    click.echo("Press Ctrl-C to stop.")
    try:
        running.server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down
        pass
    finally:
        sock.close()
    click.echo("Stopped.")
