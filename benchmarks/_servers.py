"""Baseline servers for the benchmarks, each run as its own process: `python _servers.py tornado|fastapi PORT`.

Both call the same small function in-process — what a user would write by hand instead of nbdeploy.
"""

import json
import sys


def greet(name: str, excited: bool = False) -> str:
    return f"Hello {name}" + ("!" if excited else "")


def tornado_server(port: int) -> None:
    import asyncio

    from tornado import web

    class Handler(web.RequestHandler):
        def post(self) -> None:
            args = json.loads(self.request.body)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"result": greet(**args)}))

    class Health(web.RequestHandler):
        def get(self) -> None:
            self.finish("ok")

    async def main() -> None:
        web.Application([(r"/greet", Handler), (r"/healthz", Health)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def fastapi_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    app = FastAPI()

    class Args(BaseModel):
        name: str
        excited: bool = False

    @app.post("/greet")
    def handler(args: Args) -> dict:
        return {"result": greet(args.name, args.excited)}

    @app.get("/healthz")
    def health() -> str:
        return "ok"

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    {"tornado": tornado_server, "fastapi": fastapi_server}[sys.argv[1]](int(sys.argv[2]))
