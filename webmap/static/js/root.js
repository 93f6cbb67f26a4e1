/* Wangge under a path prefix (setting url_prefix, or a proxy's X-Forwarded-Prefix; docs/DEPLOY.md).
 * The server writes the prefix in <meta name="wangge-root">. Page scripts that call site-absolute
 * paths ("/api/...") or build such links are sent to "<prefix>/api/..." instead: fetch,
 * XMLHttpRequest and clicked links are rewritten. Loaded first on every page; with no prefix it
 * does nothing. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="wangge-root"]');
  var root = meta ? meta.content.replace(/\/+$/, "") : "";
  window.wanggeRoot = root;
  if (!root) return;
  function rooted(url) {
    if (typeof url !== "string" || url.charAt(0) !== "/" || url.charAt(1) === "/") return url;
    if (url === root || url.indexOf(root + "/") === 0 || url.indexOf(root + "?") === 0) return url;
    return root + url;
  }
  window.wanggeRooted = rooted;
  var nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    return nativeFetch.call(this, rooted(input), init);
  };
  var open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function () {
    var args = Array.prototype.slice.call(arguments);
    args[1] = rooted(args[1]);
    return open.apply(this, args);
  };
  document.addEventListener("click", function (e) {
    var a = e.target && e.target.closest ? e.target.closest("a[href]") : null;
    if (!a) return;
    var href = a.getAttribute("href"), fixed = rooted(href);
    if (fixed !== href) a.setAttribute("href", fixed);
  }, true);
})();
