"""The page as breakglass-web serves it from its binary: every compiled-in
asset with its type, size, hash, ETag/304 and immutable caching under
/ui/<build>/, `/` with no-cache and the exact CSP, HEAD, 404s for unknown
assets, other builds and traversal in every encoding (with decoy files in
the server's working directory that must never be served), the page-weight
budget (issue 11: all assets under 100 KiB), and the generator
(cmake/embed_ui.cmake) itself: {{ui}} rewriting, refusal of unknown types.

usage: web_ui.py CMAKE"""
import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from webharness import SOURCE, TOKEN, WEB, Server, check, config, finish, tmpdir, write  # noqa: E402

CMAKE = sys.argv[1] if len(sys.argv) > 1 else "cmake"
BUDGET = 100 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TYPES = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
         "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
         "webmanifest": "application/manifest+json", "json": "application/json", "svg": "image/svg+xml",
         "png": "image/png", "ico": "image/x-icon", "txt": "text/plain; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"


def list_assets():
    p = subprocess.run([WEB, "--assets"], capture_output=True, text=True)
    check(p.returncode == 0, "--assets exits 0", p.stderr)
    rows, total, build = [], None, None
    for line in p.stdout.splitlines():
        m = re.match(r"^# (\d+) files, (\d+) bytes, served under /ui/([0-9a-f]{12})/$", line)
        if m:
            total, build = int(m.group(2)), m.group(3)
            check(int(m.group(1)) == len(rows), "--assets: the file count matches the rows", line)
            continue
        path, ctype, size, h = line.split("\t")
        rows.append((path, ctype, int(size), h))
    check(build is not None and rows, "--assets lists the files and the build", p.stdout)
    check(total == sum(r[2] for r in rows), "--assets: the total is the sum of the sizes", (total, rows))
    return rows, total, build


def check_assets(srv, rows, build):
    for path, ctype, size, h in rows:
        ext = path.rsplit(".", 1)[-1]
        check(ctype == TYPES.get(ext), "%s: listed as %s" % (path, TYPES.get(ext)), ctype)
        url = "/ui/%s/%s" % (build, path)
        r = srv.request("GET", url)
        ok = (r.status == 200 and r.headers.get("content-type") == ctype and
              r.headers.get("content-length") == str(size) and len(r.body) == size and
              hashlib.sha256(r.body).hexdigest()[:12] == h and r.headers.get("etag") == '"%s"' % h and
              r.headers.get("cache-control") == IMMUTABLE and r.headers.get("content-security-policy") == CSP and
              r.headers.get("x-content-type-options") == "nosniff" and
              r.headers.get("referrer-policy") == "no-referrer")
        check(ok, "GET %s: %s, %d bytes, hash %s, ETag, immutable, CSP" % (url, ctype, size, h), r)
        r = srv.request("GET", url, headers={"If-None-Match": '"%s"' % h})
        check(r.status == 304 and r.body == b"" and r.headers.get("etag") == '"%s"' % h and
              "content-length" not in r.headers, "%s: If-None-Match with its ETag: 304, no body" % path, r)
        r = srv.request("GET", url, headers={"If-None-Match": 'W/"000000000000", W/"%s"' % h})
        check(r.status == 304, "%s: a list with its weak ETag: 304" % path, r)
        r = srv.request("GET", url, headers={"If-None-Match": '"000000000000"'})
        check(r.status == 200 and len(r.body) == size, "%s: another ETag: 200 with the body" % path, r)
        r = srv.request("HEAD", url)
        check(r.status == 200 and r.body == b"" and r.headers.get("content-length") == str(size) and
              r.headers.get("content-type") == ctype, "HEAD %s: the head of GET, no body" % path, r)


def check_page(srv, rows, build):
    index = [x for x in rows if x[0] == "index.html"][0]
    r = srv.request("GET", "/")
    check(r.status == 200 and r.headers.get("content-type") == "text/html; charset=utf-8" and
          r.headers.get("cache-control") == "no-cache" and r.headers.get("content-security-policy") == CSP and
          r.headers.get("etag") == '"%s"' % index[3] and r.headers.get("x-content-type-options") == "nosniff" and
          r.headers.get("referrer-policy") == "no-referrer",
          "GET /: index.html, no-cache, its ETag, the exact CSP, nosniff, no-referrer", r.headers)
    html = r.body.decode()
    check("{{ui}}" not in html, "GET /: no {{ui}} placeholder left", html[:400])
    refs = re.findall(r'(?:src|href)="(/ui/[^"]*)"', html)
    names = set(x[0] for x in rows)
    check(refs and all(x.startswith("/ui/%s/" % build) and x[len(build) + 5:] in names for x in refs),
          "GET /: every /ui/ reference is this build's base and an asset (%d)" % len(refs), refs)
    check("manifest" in html and any(x.endswith(".webmanifest") for x in refs),
          "GET /: the page links its manifest under the build's base", refs)
    check(not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) and " style=" not in html and "<style" not in html,
          "GET /: no inline script or style (the CSP would refuse them)", html[:600])
    r = srv.request("GET", "/", headers={"If-None-Match": '"%s"' % index[3]})
    check(r.status == 304 and r.body == b"" and r.headers.get("cache-control") == "no-cache",
          "GET / revalidated: 304", r)
    r = srv.request("HEAD", "/")
    check(r.status == 200 and r.body == b"" and r.headers.get("content-length") == str(index[2]) and
          r.headers.get("content-security-policy") == CSP, "HEAD /: the head of GET", r)
    r = srv.request("GET", "/", token=None)
    check(r.status == 401, "GET / without credentials: 401", r)
    r = srv.request("GET", "/ui/%s/app.js" % build, token=None)
    check(r.status == 401 and r.doc, "an asset without credentials: 401 JSON", r)
    r = srv.request("GET", "/favicon.ico", token=None)
    fav = [x for x in rows if x[0] == "favicon.ico"]
    if fav:
        check(r.status == 200 and r.headers.get("content-type") == "image/x-icon" and
              len(r.body) == fav[0][2], "/favicon.ico: the icon, without credentials", r)
    else:
        check(r.status == 204 and r.body == b"", "/favicon.ico: 204 without credentials (no 404 logged)", r)


def check_refusals(srv, rows, build):
    other = "0" * 12 if build != "0" * 12 else "1" * 12
    r = srv.request("GET", "/ui/%s/index.html" % other)
    check(r.status == 404 and r.doc and r.doc.get("error") and r.headers.get("cache-control") == "no-store",
          "an asset of another build: 404 JSON, no-store", r)
    r = srv.request("GET", "/ui/%s/no-such-file.js" % build)
    check(r.status == 404 and r.doc and r.doc.get("status") == 404, "an unknown asset: 404 JSON", r)
    r = srv.request("GET", "/ui/%s/" % build)
    check(r.status == 404 and r.doc, "the build's base itself: 404 JSON (no listing)", r)
    r = srv.request("POST", "/ui/%s/app.js" % build, body={})
    check(r.status == 405 and "GET" in r.headers.get("allow", ""), "POST to an asset: 405 with Allow", r)
    b = build
    for p in ("/ui/%s/../../../etc/passwd" % b, "/ui/%s/%%2e%%2e/%%2e%%2e/etc/passwd" % b,
              "/ui/%s/..%%2f..%%2fetc%%2fpasswd" % b, "/ui/%s/%%2e%%2e%%2f%%2e%%2e%%2fetc%%2fpasswd" % b,
              "/ui/%s/%%252e%%252e/etc/passwd" % b, "/ui/%s/..%%5c..%%5cetc%%5cpasswd" % b,
              "/ui/%s/..\\..\\etc\\passwd" % b, "/ui/%s/%%c0%%ae%%c0%%ae/etc/passwd" % b,
              "/ui/%s//etc/passwd" % b, "/ui/%s/decoy.txt" % b,
              "/ui/%s/breakglass.conf" % b, "/ui/%s/..%%2fbreakglass.conf" % b, "/ui/%s/%%2fetc%%2fpasswd" % b,
              "/ui/..%%2f..%%2f%s/index.html" % b, "/ui/%s/sub/../../decoy.txt" % b, "/decoy.txt",
              "/ui/%s/.%%2e/decoy.txt" % b, "/ui/%s/%%2E%%2E/decoy.txt" % b):
        out = srv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (p, TOKEN)).encode())
        status = out.split(b" ", 2)[1] if out.startswith(b"HTTP/1.1 ") else b"?"
        check(status in (b"404", b"400") and b"root:" not in out and b"DECOY" not in out and b"[web]" not in out,
              "traversal %s: %s, no file" % (p, status.decode()), out[:160])


def check_nul(srv, build):
    """CivetWeb decodes the path into a C string, so %00 ends it: the
    lookup sees "index.html" and serves that page as HTML, never as the
    type the rest of the name claims, and never a file."""
    r = srv.request("GET", "/ui/%s/index.html%%00.png" % build)
    check(r.status == 404 or (r.status == 200 and r.headers.get("content-type") == "text/html; charset=utf-8" and
                              b"DECOY" not in r.body),
          "index.html%00.png: the embedded index.html as HTML at most, never a PNG or a file", r)


def check_generator():
    """cmake/embed_ui.cmake on a scratch tree: {{ui}} rewritten in HTML only,
    a hashed build, unknown types and a missing index.html refused."""
    script = os.path.join(SOURCE, "cmake", "embed_ui.cmake")
    d = tmpdir()
    ui = os.path.join(d, "ui")
    os.makedirs(os.path.join(ui, "mod"))
    write(os.path.join(ui, "index.html"), '<script type="module" src="{{ui}}/app.js"></script>', 0o644)
    write(os.path.join(ui, "app.js"), 'import "./mod/x.js"; // {{ui}} stays\n', 0o644)
    write(os.path.join(ui, "mod", "x.js"), "export const x = 1;\n", 0o644)
    write(os.path.join(ui, ".hidden.swp"), "junk", 0o644)
    out = os.path.join(d, "out.c")

    def gen():
        return subprocess.run([CMAKE, "-DUI_DIR=" + ui, "-DOUT=" + out, "-P", script], capture_output=True,
                              text=True)
    p = gen()
    text = open(out).read() if os.path.exists(out) else ""
    m = re.search(r'web_assets_build\[\] = "([0-9a-f]{12})"', text)
    check(p.returncode == 0 and m, "embed_ui.cmake generates the table", p.stderr)
    rows = re.findall(r'\{"([^"]+)", "([^"]+)", a\d+, (\d+), "([0-9a-f]{12})"\}', text)
    check([r[0] for r in rows] == ["app.js", "index.html", "mod/x.js"],
          "embed_ui.cmake: every file, recursively, hidden ones skipped, sorted", rows)
    if m and rows:
        html = '<script type="module" src="/ui/%s/app.js"></script>' % m.group(1)
        idx = [r for r in rows if r[0] == "index.html"][0]
        check(int(idx[2]) == len(html) and idx[3] == hashlib.sha256(html.encode()).hexdigest()[:12],
              "embed_ui.cmake: {{ui}} in index.html becomes /ui/<build>, its hash is of the rewritten page", idx)
        js = [r for r in rows if r[0] == "app.js"][0]
        check(int(js[2]) == len('import "./mod/x.js"; // {{ui}} stays\n'), "embed_ui.cmake: JS is not rewritten",
              js)
    first = m.group(1) if m else None
    write(os.path.join(ui, "mod", "x.js"), "export const x = 2;\n", 0o644)
    gen()
    m2 = re.search(r'web_assets_build\[\] = "([0-9a-f]{12})"', open(out).read())
    check(m2 and first and m2.group(1) != first, "embed_ui.cmake: a changed file changes the build hash",
          (first, m2 and m2.group(1)))
    write(os.path.join(ui, "tool.exe"), "MZ", 0o644)
    p = gen()
    check(p.returncode != 0 and "tool.exe" in p.stderr, "embed_ui.cmake refuses a file of unknown type", p.stderr)
    os.unlink(os.path.join(ui, "tool.exe"))
    write(os.path.join(ui, "bad name.js"), "", 0o644)
    p = gen()
    check(p.returncode != 0 and "bad name.js" in p.stderr, "embed_ui.cmake refuses a path with a space", p.stderr)
    os.unlink(os.path.join(ui, "bad name.js"))
    os.unlink(os.path.join(ui, "index.html"))
    p = gen()
    check(p.returncode != 0 and "index.html" in p.stderr, "embed_ui.cmake refuses a page without index.html",
          p.stderr)
    shutil.rmtree(d, ignore_errors=True)


rows, total, build = list_assets()
check(total < BUDGET, "page weight: %d bytes in %d files, under the %d-byte budget (issue 11)" % (
    total, len(rows), BUDGET), rows)
check("index.html" in [r[0] for r in rows], "index.html is compiled in", rows)
check_generator()

base = tmpdir()
# Decoys where a server that read files would find them: its working
# directory, named like assets.
write(os.path.join(base, "decoy.txt"), "DECOY\n", 0o644)
write(os.path.join(base, "index.html"), "DECOY\n", 0o644)
write(os.path.join(base, "app.js"), "DECOY\n", 0o644)
os.chdir(base)
srv = Server(config(base, auth="bearer"))
try:
    check_assets(srv, rows, build)
    check_page(srv, rows, build)
    check_refusals(srv, rows, build)
    check_nul(srv, build)
finally:
    rc = srv.stop()
check(rc == 0, "SIGTERM: exit 0", rc)
check(not srv.sanitizer_report(), "no sanitizer report", srv.sanitizer_report())
finish()
