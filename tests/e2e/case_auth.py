"""1. authentication as the oVirt SDKs do it: SSO token, Bearer, Basic, logout."""
import time
import xml.etree.ElementTree as ET

from harness import case, random_name, vm_xml, domains


@case("auth: token flow, Bearer, Basic, wrong password, 401 without auth, logout")
def auth(env):
    r, js = env.token()
    env.require(js is not None and isinstance(js.get("access_token"), str) and js["access_token"],
                "token endpoint: no JSON access_token: " + r.short())
    env.check("json" in r.headers.get("content-type", ""),
              "token endpoint: Content-Type is %r, not JSON" % r.headers.get("content-type"))
    env.check(str(js.get("token_type", "")).lower() == "bearer",
              "token endpoint: token_type is %r, not bearer" % js.get("token_type"))
    env.check("exp" in js, "token endpoint: no 'exp' in %r" % js)
    tok = js["access_token"]

    r = env.api("GET", "/", token=tok)
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "api",
              "Bearer GET /: " + r.short())
    r = env.api("GET", "/vms", auth="basic")
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "vms",
              "Basic GET /vms: " + r.short())
    r = env.api("GET", "/api/vms", token=tok)
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "vms",
              "Bearer GET /api/vms (the short root): " + r.short())

    # refused logins: the SDK reads the JSON error, not the status
    for user, pw, what in (("admin@internal", "wrong-pw", "wrong password"),
                           ("nobody@internal", "secret-pw", "unknown user"),
                           ("admin@internal", "", "empty password")):
        r, js = env.token(user, pw)
        env.check(js is not None and js.get("error") == "access_denied"
                  and "access_token" not in js,
                  "token endpoint, %s: expected JSON error access_denied, got: %s" % (what, r.short()))
        env.check(r.status >= 400, "token endpoint, %s: status %d for a refused login" % (what, r.status))

    # 401 on the API without/with bad credentials; nothing may happen
    before = env.snapshot()
    name = random_name()
    env.vm_names.add(name)
    for what, kw in (("no auth", dict(auth=None)),
                     ("Basic with a wrong password", dict(auth="basic", password="wrong-pw")),
                     ("a made-up Bearer token", dict(token="0123456789abcdef" * 4)),
                     ("a malformed Authorization", dict(auth=None, headers={"Authorization": "Bearer"}))):
        # repeated wrong passwords are slowed: 429 once the user's free failures are used up
        refused = (401, 429) if "password" in kw else 401
        r = env.api("GET", "/vms", **kw)
        env.check_fault(r, refused, "GET /vms with " + what)
        r = env.api("POST", "/vms", vm_xml(name), **kw)
        env.check_fault(r, refused, "POST /vms with " + what)
        r = env.api("GET", "/vms", json=True, **kw)
        env.check_fault(r, refused, "GET /vms (JSON) with " + what)
    env.check(name not in domains(), "a refused POST /vms started domain %s" % name)
    env.check_unchanged(before, "requests refused with 401")

    # logout invalidates that token and no other (after the wait the failures above earned)
    r2, js2 = env.token()
    if r2.status == 429:
        env.check((r2.headers.get("retry-after") or "").isdigit(), "429 without Retry-After: " + r2.short())
        time.sleep(int(r2.headers.get("retry-after") or 1))
        r2, js2 = env.token()
    env.require(js2 and js2.get("access_token"), "second token: " + r2.short())
    tok2 = js2["access_token"]
    env.check(tok2 != tok, "two logins gave the same token %r" % tok)
    r = env.logout(tok)
    env.check(r.status == 200 and isinstance(r.body, dict),
              "sso-logout: expected 200 with a JSON answer, got: " + r.short())
    r = env.api("GET", "/vms", token=tok)
    env.check_fault(r, 401, "GET /vms with a logged-out token")
    r = env.api("GET", "/vms", token=tok2)
    env.check(r.status == 200, "GET /vms with another, still valid token after logout: " + r.short())
    r = env.api("GET", "/vms", auth="basic")
    env.check(r.status == 200, "Basic after logout: " + r.short())
    # a logged-out token cannot be used to log out again and do harm
    r = env.logout(tok)
    env.check(r.status in (200, 400, 401) and r.status != 0,
              "second sso-logout of the same token: " + r.short())
