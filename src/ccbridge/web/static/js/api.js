// The console's only way to the server: the public HTTP API and its SSE streams, with the
// signed-in user's own credential (kept in sessionStorage, gone when the tab closes).

const SESSION_KEY = "ccbridge.session";

/** {credential, tenant, role, agentNo, subject} or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(value) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** The claims of a person token (JWT), read without verifying: the server verifies. */
export function tokenClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(decodeURIComponent(escape(json)));
  } catch {
    return null;
  }
}

/** An HTTP failure with the problem+json body's detail and the fields it names. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail || problem?.title || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.problem = problem || {};
  }

  /** [{field, message}] from the problem's errors list (422), if any. */
  get fieldErrors() {
    const errors = this.problem.errors;
    if (!Array.isArray(errors)) return [];
    return errors.map((e) => ({
      field: e.field ?? e.path ?? (Array.isArray(e.loc) ? e.loc.join(".") : ""),
      message: e.message ?? e.msg ?? e.detail ?? "",
      code: e.code ?? e.type ?? "",
    }));
  }
}

function authHeaders(credential) {
  const cred = credential ?? session()?.credential;
  return cred ? { Authorization: `Bearer ${cred}` } : {};
}

/** Call the API; JSON in and out. Throws ApiError on a non-2xx answer. */
export async function api(method, path, { body, query, credential, headers, raw } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const init = { method, headers: { Accept: "application/json", ...authHeaders(credential), ...headers } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (!resp.ok) {
    let problem = null;
    try {
      problem = await resp.json();
    } catch {
      problem = null;
    }
    throw new ApiError(resp.status, problem);
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

/** A call-control POST: each click carries its own Idempotency-Key (never dials twice). */
export function control(path, body) {
  return api("POST", path, { body, headers: { "Idempotency-Key": crypto.randomUUID() } });
}

/**
 * Follow an SSE stream with the Authorization header (EventSource cannot send one): parse the
 * frames from fetch's body, call onEvent(type, data, id), reconnect with Last-Event-ID after a
 * drop. Returns {close()}; onStatus(state) hears "open" / "retry" / "gone" (404).
 */
export function stream(path, onEvent, { onStatus = () => {}, retryMs = 1000 } = {}) {
  let lastId = null;
  let stopped = false;
  let controller = null;

  async function once() {
    controller = new AbortController();
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const resp = await fetch(path, { headers, signal: controller.signal });
    if (resp.status === 404) {
      onStatus("gone");
      stopped = true;
      return;
    }
    if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
    onStatus("open");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        dispatch(frame);
      }
    }
  }

  function dispatch(frame) {
    let type = "message";
    let id = null;
    const data = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (id) lastId = id;
    if (!data.length) return;
    let parsed = data.join("\n");
    try {
      parsed = JSON.parse(parsed);
    } catch {
      /* keep the text */
    }
    onEvent(type, parsed, id);
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (err) {
        if (stopped) return;
      }
      if (stopped) return;
      onStatus("retry");
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return {
    close() {
      stopped = true;
      controller?.abort();
    },
  };
}

/** Save a response body as a file the browser downloads. */
export async function download(path, query, filename) {
  const resp = await api("GET", path, { query, raw: true, headers: { Accept: "*/*" } });
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob;
}
