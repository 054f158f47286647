"""12. the web console's files and oVirt's CA certificate URL, over plain HTTP (the pages
themselves are driven in Chromium by tests/web)."""
import base64
import hashlib
import re
import subprocess

from harness import case, http_request

CA_URL = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"


@case("web: pki-resource serves the CA without login; / and /console carry CSP, ETag and SRI that match")
def web_assets(env):
    r = http_request(env.port, "GET", CA_URL)
    env.check(r.status == 200 and r.raw.startswith(b"-----BEGIN CERTIFICATE-----"),
              "GET %s without credentials: %s" % (CA_URL, r.short()))
    with open("%s/pki/ca.pem" % env.state_dir, "rb") as f:
        env.check(r.raw == f.read(), "pki-resource does not serve STATE/pki/ca.pem")
    p = subprocess.run(["openssl", "x509", "-noout", "-ext", "basicConstraints"], input=r.raw,
                       capture_output=True)
    env.check(b"CA:TRUE" in p.stdout, "the served certificate is no CA: %r" % p.stdout)
    bad = http_request(env.port, "GET", "/ovirt-engine/services/pki-resource?resource=engine-key")
    env.check(bad.status == 404 and b"ca-certificate" in bad.raw, "an unknown pki resource: %s" % bad.short())

    for page in ("/", "/console"):
        r = http_request(env.port, "GET", page)
        env.require(r.status == 200, "GET %s: %s" % (page, r.short()))
        csp = r.headers.get("content-security-policy", "")
        env.check("script-src 'self'" in csp and "unsafe-inline" not in csp,
                  "GET %s: CSP %r allows inline script or lacks script-src" % (page, csp))
        env.check(r.headers.get("cache-control") and r.headers.get("etag"),
                  "GET %s: no cache headers: %r" % (page, r.headers))
        html = r.raw.decode()
        env.check("<script>" not in html and "%SRI:" not in html, "GET %s: inline script or an unfilled hash" % page)
        # every script, module preload and style sheet names the hash of what is served
        refs = re.findall(r'(?:src|href)="(/[\w.-]+\.(?:js|css))" integrity="(sha384-[^"]+)"', html)
        env.check(refs or page == "/", "GET %s: no asset with an integrity hash" % page)
        for path, integrity in refs:
            a = http_request(env.port, "GET", path)
            got = "sha384-" + base64.b64encode(hashlib.sha384(a.raw).digest()).decode()
            env.check(a.status == 200 and got == integrity,
                      "%s: integrity %s in %s, served %s (%s)" % (path, integrity, page, got, a.short()))
            env.check(a.headers.get("etag") == '"%s"' % integrity, "%s: ETag %r" % (path, a.headers.get("etag")))
            again = http_request(env.port, "GET", path, headers={"If-None-Match": a.headers.get("etag", "")})
            env.check(again.status == 304 and not again.raw, "%s with If-None-Match: %s" % (path, again.short()))
    r = http_request(env.port, "POST", "/console", "x")
    env.check(r.status == 405, "POST /console: %s" % r.short())
    r = http_request(env.port, "GET", "/../etc/passwd")
    env.check(r.status in (400, 404), "GET /../etc/passwd: %s" % r.short())
    # a bearer client gets no Basic challenge (a browser would open its password dialog)
    r = http_request(env.port, "GET", "/ovirt-engine/api", headers={"Authorization": "Bearer nope"})
    env.check(r.status == 401 and "www-authenticate" not in r.headers,
              "a bad bearer token: %s, WWW-Authenticate %r" % (r.status, r.headers.get("www-authenticate")))
