/* The planner's JSON API client: CSRF on writes, one error type with the server's message and fix. */
import { PAGE } from "./core.js";

const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

/** A refused or failed request: HTTP *status*, the server's error *code*, message and *fix*. */
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `请求失败（HTTP ${status}）`);
    this.status = status;
    this.code = err.code || String(status);
    this.fix = err.fix || "";
    this.detail = err;
  }
}

/** fetch JSON from the API; mutating calls carry the CSRF token. Throws ApiError. */
export async function api(method, path, body) {
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    opts.headers["X-CSRFToken"] = CSRF;
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body || {});
  }
  let resp;
  const url = path.startsWith("/") && !path.startsWith(PAGE.api) && !path.startsWith(PAGE.context) ? PAGE.api + path : path;
  const early = method === "GET" && window.wanggePrefetch && window.wanggePrefetch[url];
  if (early) delete window.wanggePrefetch[url];  // a started request is used once (the first load)
  try {
    resp = (early && await early) || await fetch(url, opts);
  } catch (e) {
    throw new ApiError(0, { error: { message: "无法连接服务器，请检查网络后重试" } });
  }
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}
