// HTTP calls to the /v1 API with the analyst's Bearer key, and the live alert stream.
//
// EventSource cannot send an Authorization header, so the stream is read with fetch()
// and a ReadableStream reader, parsing text/event-stream by hand (a few lines).

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export class Api {
  constructor(key, onUnauthorized) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, Accept: "application/json", ...extra };
  }

  async request(method, path, { params, body } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    }
    const init = { method, headers: this.headers() };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const detail = payload && payload.detail !== undefined ? payload.detail : response.statusText;
      if (response.status === 401) this.onUnauthorized();
      throw new ApiError(response.status, detail);
    }
    return payload;
  }

  get(path, params) {
    return this.request("GET", path, { params });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }

  // Follow /v1/alerts/stream until stop() is called, reconnecting after a drop.
  // onEvent({event, data, id}); onState("connecting" | "live" | "reconnecting").
  stream(onEvent, onState) {
    const controller = new AbortController();
    let retryMs = 2000;
    const run = async () => {
      while (!controller.signal.aborted) {
        onState("connecting");
        try {
          const response = await fetch("/v1/alerts/stream", {
            headers: this.headers({ Accept: "text/event-stream" }),
            signal: controller.signal,
            cache: "no-store",
          });
          if (response.status === 401) {
            this.onUnauthorized();
            return;
          }
          if (!response.ok || !response.body) throw new ApiError(response.status, "stream refused");
          await readEventStream(response.body, controller.signal, (msg) => {
            if (msg.retry) retryMs = msg.retry;
            if (msg.comment === "ready") onState("live");
            if (msg.data !== undefined) onEvent(msg);
          });
        } catch (err) {
          if (controller.signal.aborted) return;
        }
        if (controller.signal.aborted) return;
        onState("reconnecting");
        await sleep(retryMs, controller.signal);
      }
    };
    run();
    return () => controller.abort();
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

// Parse a text/event-stream body: blocks separated by a blank line; "field: value" lines;
// lines starting with ":" are comments. Calls onMessage once per block.
export async function readEventStream(body, signal, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // normalise line ends, keeping a trailing "\r" that may pair with the next chunk's "\n"
    const keepCr = buffer.endsWith("\r");
    buffer = buffer.replace(/\r\n?/g, "\n");
    if (keepCr) buffer = buffer.slice(0, -1) + "\r";
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      onMessage(parseBlock(block));
    }
  }
}

function parseBlock(block) {
  const msg = { event: "message" };
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) {
      msg.comment = line.slice(1).trim();
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") msg.event = value;
    else if (field === "id") msg.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) msg.retry = Number(value);
  }
  if (data.length) msg.data = data.join("\n");
  return msg;
}
