// The API's auth modes a device or a web page can use (modelsync_device.auth): an API key (x-api-key, for
// AuthMode=API_KEY) and a bearer token (Cognito ID/access token, AuthMode=COGNITO). Headers go only to URLs
// under the API's base URL: presigned document URLs carry their own authentication (and a custom header
// there would cost browsers a CORS preflight against the bucket). IAM (SigV4) is for operators and
// servers; it is not offered here (a browser must not hold AWS credentials).

/** No credentials (AuthMode=NONE). */
export function noAuth() {
  return { mode: "none", headers: () => ({}), refresh: async () => false };
}

/** `x-api-key: KEY` on every API request. */
export function apiKeyAuth(key) {
  if (typeof key !== "string" || !key.trim()) throw new Error("the API key is empty");
  const value = key.trim();
  return { mode: "api-key", headers: () => ({ "x-api-key": value }), refresh: async () => false };
}

/**
 * `Authorization: Bearer TOKEN`. `token` is the token text, or a (possibly async) function returning it -
 * called once, and again after a 401 (an expired token), when the request is retried once if the token
 * changed (what modelsync_device.TokenAuth does with its token command).
 */
export function bearerAuth(token) {
  const getter = typeof token === "function" ? token : () => token;
  let current = null;
  const read = async () => {
    const t = await getter();
    if (typeof t !== "string" || !t.trim()) throw new Error("the token is empty");
    return t.trim().replace(/^Bearer\s+/, "");
  };
  return {
    mode: "token",
    async headers() {
      if (current === null) current = await read();
      return { Authorization: `Bearer ${current}` };
    },
    async refresh() {
      if (typeof token !== "function") return false;
      const old = current;
      current = await read();
      return current !== old;
    },
  };
}

/** Whether `url` is under the API base URL (same origin, path at or below the base path). */
export function coveredBy(apiUrl, url) {
  const base = new URL(apiUrl);
  const u = new URL(url);
  const path = base.pathname.replace(/\/+$/, "");
  return u.origin === base.origin && (u.pathname === path || u.pathname.startsWith(path + "/"));
}
