import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbstractHttpAdapter } from '@nestjs/core';

type Handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => unknown;

/**
 * The smallest HTTP adapter that lets Nest route exact-path requests over
 * node:http, for the health sample and hybrid-app tests (no HTTP platform
 * package is installed here; a real app uses @nestjs/platform-express or
 * -fastify instead).
 */
class MiniRouter {
  readonly routes = new Map<string, Handler>();
  notFound?: Handler;
  private add(method: string, pathOrHandler: string | Handler, handler?: Handler): void {
    if (typeof pathOrHandler === 'string' && handler)
      this.routes.set(`${method} ${pathOrHandler}`, handler);
  }
  get(path: string | Handler, handler?: Handler): void {
    this.add('GET', path, handler);
  }
  post(path: string | Handler, handler?: Handler): void {
    this.add('POST', path, handler);
  }
  use(): void {}
  dispatch(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const handler = this.routes.get(`${req.method} ${path}`) ?? this.notFound;
    if (!handler) {
      res.statusCode = 404;
      res.end();
      return;
    }
    void handler(req, res, () => undefined);
  }
}

export class MiniHttpAdapter extends AbstractHttpAdapter<
  http.Server,
  IncomingMessage,
  ServerResponse
> {
  private readonly router: MiniRouter;

  constructor() {
    const router = new MiniRouter();
    super(router);
    this.router = router;
  }

  initHttpServer(): void {
    this.httpServer = http.createServer((req, res) => this.router.dispatch(req, res));
  }

  override listen(port: string | number, ...rest: unknown[]): unknown {
    const callback = rest.find(arg => typeof arg === 'function') as (() => void) | undefined;
    // exclusive: a cluster worker binds its own socket; without it every
    // worker's listen(0) shares the one port the primary picks.
    return this.httpServer.listen(
      { port: Number(port), host: '127.0.0.1', exclusive: true },
      callback,
    );
  }

  get port(): number {
    return (this.httpServer.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise(resolve =>
      this.httpServer ? this.httpServer.close(() => resolve()) : resolve(),
    );
  }

  useStaticAssets(): void {}
  setViewEngine(): void {}
  getRequestHostname(request: IncomingMessage): string {
    return request.headers.host ?? '';
  }
  getRequestMethod(request: IncomingMessage): string {
    return request.method ?? 'GET';
  }
  getRequestUrl(request: IncomingMessage): string {
    return request.url ?? '/';
  }
  status(response: ServerResponse, statusCode: number): void {
    response.statusCode = statusCode;
  }
  reply(response: ServerResponse, body: unknown, statusCode?: number): void {
    if (statusCode) response.statusCode = statusCode;
    if (body === undefined || body === null) {
      response.end();
      return;
    }
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify(body));
  }
  end(response: ServerResponse, message?: string): void {
    response.end(message);
  }
  render(): void {}
  redirect(response: ServerResponse, statusCode: number, url: string): void {
    response.statusCode = statusCode;
    response.setHeader('location', url);
    response.end();
  }
  setErrorHandler(): void {}
  setNotFoundHandler(handler: Handler): void {
    this.router.notFound = handler;
  }
  isHeadersSent(response: ServerResponse): boolean {
    return response.headersSent;
  }
  getHeader(response: ServerResponse, name: string): unknown {
    return response.getHeader(name);
  }
  setHeader(response: ServerResponse, name: string, value: string): void {
    response.setHeader(name, value);
  }
  appendHeader(response: ServerResponse, name: string, value: string): void {
    response.appendHeader(name, value);
  }
  registerParserMiddleware(): void {}
  enableCors(): void {}
  createMiddlewareFactory(): ReturnType<AbstractHttpAdapter['createMiddlewareFactory']> {
    return () => undefined;
  }
  getType(): string {
    return 'mini-http';
  }
  applyVersionFilter(handler: Handler): ReturnType<AbstractHttpAdapter['applyVersionFilter']> {
    return handler as unknown as ReturnType<AbstractHttpAdapter['applyVersionFilter']>;
  }
}
