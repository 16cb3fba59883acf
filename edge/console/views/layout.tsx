// Every console page's frame and the notice page. No inline script or style: the CSP allows 'self' only.
import type { Child, FC } from "hono/jsx";

/** `refresh`: an address of this origin the page moves on to at once (a navigation this origin starts). */
export const Layout: FC<{ title: string; refresh?: string; children?: Child }> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      {props.refresh === undefined ? null : <meta http-equiv="refresh" content={`0; url=${props.refresh}`} />}
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${props.title} · Edgewise console`}</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/_console/static/console.css" />
      <script src="/_console/static/console.js" defer />
    </head>
    <body>
      <header>
        <a href="/_console" class="brand">
          Edgewise console
        </a>
        <nav>
          <a href="/_console#topology">Topology</a>
          <a href="/_console#events">Events</a>
          <a href="/_console#breakers">Breakers</a>
          <a href="/_console#queues">Queues</a>
          <a href="/_console#inspector">Inspector</a>
          <a href="/_console#traces">Traces</a>
        </nav>
      </header>
      <main>{props.children}</main>
    </body>
  </html>
);

export const Notice: FC<{ title: string; message: string; hint?: string }> = (props) => (
  <Layout title={props.title}>
    <section class="notice">
      <h1>{props.title}</h1>
      <p>{props.message}</p>
      {props.hint ? <p class="hint">{props.hint}</p> : null}
    </section>
  </Layout>
);
