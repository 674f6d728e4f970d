#!/usr/bin/env python3
"""Helpers of bench/scale.sh (Python standard library only).

Subcommands (the Authorization header value, if any, comes from the
environment variable SCALE_AUTH, never from the command line):

  push BASE NAME OUT        push a small image (config + one layer) to NAME,
                            tag it `x-seed` (after every tag the bench
                            makes), write its manifest bytes to OUT
  tags BASE NAME MANIFEST FIRST LAST CONNS
                            PUT the manifest under tags t{FIRST..LAST} (six
                            digits) over CONNS concurrent connections
  repos BASE KIND MANIFEST FIRST LAST CONNS
                            create repositories r{FIRST..LAST} (six digits),
                            each with image `app` tagged `latest` (blobs
                            mounted from default/bench/app); KIND is
                            `entrepot` (also creates the repository through
                            the admin API) or `distribution`
  put-rate BASE NAME MANIFEST PREFIX SECS
                            PUT new tags PREFIX-{n} one after another on one
                            connection for SECS seconds; prints tags/s and
                            the number of errors
  untag BASE NAME PREFIX CONNS
                            DELETE every tag PREFIX-* of NAME (entrepot)
  check-tags BASE NAME COUNT
                            check the first tags/list page (n=100), follow
                            its Link, and check the middle page
  admin-pages BASE PROJECT  print the URL path of the first admin list page
                            (pageSize=100) and of the page its nextPageToken
                            leads to (the first again if there is none), and
                            how many repositories the first page held
  hold BASE PATH COUNT       open COUNT keep-alive connections, send one GET
                            PATH on each and read its answer, print `open`,
                            keep them until stdin closes, then close them
  hold-upload BASE NAME COUNT KIB
                            the same, each connection first pushing a blob of
                            KIB KiB to NAME (POST, then PUT with the body)
  wrk-parse FILE            print `p50_ms p99_ms rps errors` from wrk output
  report RESULTS            print the markdown tables of a results file

Every request that does not get the expected status counts as an error; a
subcommand with errors exits non-zero.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def auth_headers():
    value = os.environ.get("SCALE_AUTH", "")
    return {"Authorization": value} if value else {}


def connect(base):
    """A keep-alive connection to BASE (host:port)."""
    host, port = base.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=120)


class Client:
    """One connection that reconnects after the server closed it."""

    def __init__(self, base):
        self.base = base
        self.conn = connect(base)

    def request(self, method, path, body=None, headers=None):
        h = dict(auth_headers())
        h.update(headers or {})
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, r.headers, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: once more.
                self.conn.close()
                self.conn = connect(self.base)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def fail(message):
    print(f"scale.py: {message}", file=sys.stderr)
    sys.exit(1)


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client, name, data, mount_from=None):
    """Upload (or mount) one blob; returns None on success, else an error."""
    digest = digest_of(data)
    path = f"/v2/{name}/blobs/uploads/"
    if mount_from:
        path += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
    status, headers, body = client.request("POST", path, body=b"", headers={"Content-Length": "0"})
    if status == 201:
        return None
    if status != 202:
        return f"POST {path}: {status} {body[:200]!r}"
    location = headers.get("Location", "")
    loc = urllib.parse.urlsplit(location)
    query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
    put = f"{loc.path}?{query}"
    status, _, body = client.request(
        "PUT", put, body=data,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if status != 201:
        return f"PUT {put}: {status} {body[:200]!r}"
    return None


def put_manifest(client, name, reference, manifest):
    status, _, body = client.request(
        "PUT", f"/v2/{name}/manifests/{reference}", body=manifest,
        headers={"Content-Type": MANIFEST_TYPE, "Content-Length": str(len(manifest))})
    if status != 201:
        return f"PUT manifest {name}:{reference}: {status} {body[:200]!r}"
    return None


def image():
    """A small image: config, one layer, and a manifest of about 1.5 KiB
    (annotations make it the size of a typical image manifest)."""
    layer = b"entrepot scale benchmark layer\n"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}}).encode()
    annotations = {f"org.example.bench.label{i}": "x" * 48 for i in range(16)}
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer), "size": len(layer)}],
        "annotations": annotations,
    }).encode()
    return config, layer, manifest


def cmd_push(base, name, out):
    client = Client(base)
    config, layer, manifest = image()
    for blob in (config, layer):
        err = push_blob(client, name, blob)
        if err:
            fail(err)
    err = put_manifest(client, name, "x-seed", manifest)
    if err:
        fail(err)
    with open(out, "wb") as f:
        f.write(manifest)
    with open(out + ".blobs", "w") as f:
        f.write(f"{digest_of(config)} {digest_of(layer)}\n")


def run_pool(base, items, conns, work):
    """Run work(client, item) over a pool of CONNS threads, each with its own
    connection; returns (done, errors, seconds)."""
    local = threading.local()
    errors = []
    lock = threading.Lock()

    def one(item):
        if not hasattr(local, "client"):
            local.client = Client(base)
        try:
            err = work(local.client, item)
        except OSError as e:
            err = f"{item}: {e}"
        if err:
            with lock:
                errors.append(err)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=conns) as pool:
        for _ in pool.map(one, items, chunksize=64):
            pass
    return len(items), errors, time.monotonic() - start


def report_pool(what, done, errors, secs):
    print(f"{what}: {done} in {secs:.1f} s ({done / max(secs, 1e-9):.0f}/s), {len(errors)} errors",
          file=sys.stderr)
    if errors:
        for e in errors[:5]:
            print(f"  {e}", file=sys.stderr)
        sys.exit(1)


def cmd_tags(base, name, manifest_path, first, last, conns):
    manifest = open(manifest_path, "rb").read()
    items = range(int(first), int(last) + 1)
    if not items:
        return
    done, errors, secs = run_pool(
        base, items, int(conns), lambda c, i: put_manifest(c, name, f"t{i:06d}", manifest))
    report_pool(f"{name}: tags t{int(first):06d}..t{int(last):06d}", done, errors, secs)


def cmd_repos(base, kind, manifest_path, first, last, conns):
    manifest = open(manifest_path, "rb").read()
    digests = open(manifest_path + ".blobs").read().split()
    config, layer, _ = image()
    assert [digest_of(config), digest_of(layer)] == digests, "image() changed since push"

    def work(client, i):
        repo = f"r{i:06d}"
        if kind == "entrepot":
            body = json.dumps({"format": "docker"}).encode()
            status, _, text = client.request(
                "POST", f"/v1/projects/default/repositories?repositoryId={repo}", body=body,
                headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
            if status not in (200, 409):
                return f"create {repo}: {status} {text[:200]!r}"
        name = f"default/{repo}/app"
        for blob in (config, layer):
            err = push_blob(client, name, blob, mount_from="default/bench/app")
            if err:
                return err
        return put_manifest(client, name, "latest", manifest)

    items = range(int(first), int(last) + 1)
    if not items:
        return
    done, errors, secs = run_pool(base, items, int(conns), work)
    report_pool(f"{kind}: repositories r{int(first):06d}..r{int(last):06d}", done, errors, secs)


def cmd_put_rate(base, name, manifest_path, prefix, secs):
    manifest = open(manifest_path, "rb").read()
    client = Client(base)
    n, errors = 0, 0
    start = time.monotonic()
    end = start + float(secs)
    while time.monotonic() < end:
        if put_manifest(client, name, f"{prefix}-{n:07d}", manifest):
            errors += 1
        n += 1
    elapsed = time.monotonic() - start
    print(f"{(n - errors) / elapsed:.0f} {errors}")
    if errors:
        sys.exit(1)


def cmd_untag(base, name, prefix, conns):
    client = Client(base)
    doomed, last = [], None
    while True:
        query = urllib.parse.urlencode({"n": 1000, "last": last or f"{prefix}-"})
        status, _, body = client.request("GET", f"/v2/{name}/tags/list?{query}")
        if status != 200:
            fail(f"tags/list: {status} {body[:200]!r}")
        tags = json.loads(body)["tags"] or []
        mine = [t for t in tags if t.startswith(prefix + "-")]
        doomed += mine
        if len(mine) < len(tags) or not tags:
            break
        last = tags[-1]

    def work(c, tag):
        status, _, body = c.request("DELETE", f"/v2/{name}/manifests/{tag}")
        return None if status == 202 else f"DELETE {tag}: {status} {body[:200]!r}"

    done, errors, secs = run_pool(base, doomed, int(conns), work)
    report_pool(f"{name}: deleted tags {prefix}-*", done, errors, secs)


def cmd_check_tags(base, name, count):
    count = int(count)
    client = Client(base)
    status, headers, body = client.request("GET", f"/v2/{name}/tags/list?n=100")
    if status != 200:
        fail(f"tags/list: {status} {body[:200]!r}")
    tags = json.loads(body)["tags"]
    want = [f"t{i:06d}" for i in range(1, min(count, 100) + 1)]
    if [t for t in tags if t.startswith("t")] != want:
        fail(f"tags/list first page: {tags[:3]}...")
    link = headers.get("Link")
    if count > 100:
        if not link:
            fail("tags/list: no Link header after a full first page")
        m = re.match(r"<([^>]+)>", link)
        if not m:
            fail(f"tags/list: malformed Link {link!r}")
        status, _, body = client.request("GET", m.group(1))
        second = json.loads(body)["tags"] if status == 200 else []
        if second[:1] != [f"t{101:06d}"]:
            fail(f"tags/list second page (Link {link}): {status} {second[:3]}")
        mid = count // 2
        status, _, body = client.request("GET", f"/v2/{name}/tags/list?n=100&last=t{mid:06d}")
        page = json.loads(body)["tags"] if status == 200 else []
        if page[:1] != [f"t{mid + 1:06d}"] or len(page) != 100:
            fail(f"tags/list middle page: {status} {page[:3]}... ({len(page)} tags)")


def cmd_admin_pages(base, project):
    client = Client(base)
    first = f"/v1/projects/{project}/repositories?pageSize=100"
    status, _, body = client.request("GET", first)
    if status != 200:
        fail(f"GET {first}: {status} {body[:200]!r}")
    page = json.loads(body)
    token = page.get("nextPageToken")
    following = first
    if token:
        following = first + "&" + urllib.parse.urlencode({"pageToken": token})
        status, _, body = client.request("GET", following)
        if status != 200:
            fail(f"GET {following}: {status} {body[:200]!r}")
    print(first)
    print(following)
    print(len(page.get("repositories", [])))


def read_answer(sock):
    """Read one HTTP answer with a Content-Length body; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(m.group(1)) if m else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return int(head.split(b" ", 2)[1])


def cmd_hold(base, path, count):
    import socket
    host, port = base.rsplit(":", 1)
    auth = auth_headers().get("Authorization")
    request = (f"GET {path} HTTP/1.1\r\nHost: {base}\r\n"
               f"Accept: {MANIFEST_TYPE}\r\n"
               + (f"Authorization: {auth}\r\n" if auth else "") + "\r\n").encode()
    socks = []
    # PATH `-`: connections that never send a byte. SCALE_HOLD_AT_ONCE=1:
    # every request sent before any answer is read (all in flight at once).
    at_once = os.environ.get("SCALE_HOLD_AT_ONCE") == "1"
    for _ in range(int(count)):
        s = socket.create_connection((host, int(port)))
        if path != "-":
            s.sendall(request)
            if not at_once and read_answer(s) != 200:
                fail(f"GET {path}: not 200")
        socks.append(s)
    if at_once and path != "-":
        for s in socks:
            if read_answer(s) != 200:
                fail(f"GET {path}: not 200")
    print("open", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


def read_head(sock):
    """Read one HTTP answer; returns (status, head text)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed before the answer")
        data += chunk
    head = data.decode("latin-1")
    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
    length = int(m.group(1)) if m else 0
    while length > 0:
        length -= len(sock.recv(length))
    return int(head.split(" ", 2)[1]), head


def cmd_hold_upload(base, name, count, kib):
    import socket
    host, port = base.rsplit(":", 1)
    auth = auth_headers().get("Authorization")
    auth_line = f"Authorization: {auth}\r\n" if auth else ""
    blob = os.urandom(int(kib) * 1024)
    digest = digest_of(blob)
    socks = []
    for _ in range(int(count)):
        s = socket.create_connection((host, int(port)))
        s.sendall((f"POST /v2/{name}/blobs/uploads/ HTTP/1.1\r\nHost: {base}\r\n{auth_line}"
                   "Content-Length: 0\r\n\r\n").encode())
        status, head = read_head(s)
        m = re.search(r"(?im)^location:\s*(\S+)", head)
        if status != 202 or not m:
            fail(f"POST uploads: {status}")
        loc = urllib.parse.urlsplit(m.group(1))
        query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
        s.sendall((f"PUT {loc.path}?{query} HTTP/1.1\r\nHost: {base}\r\n{auth_line}"
                   "Content-Type: application/octet-stream\r\n"
                   f"Content-Length: {len(blob)}\r\n\r\n").encode() + blob)
        status, _ = read_head(s)
        if status != 201:
            fail(f"PUT upload: {status}")
        socks.append(s)
    print("open", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def duration_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def cmd_wrk_parse(path):
    text = open(path).read()
    p = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        p[pct] = duration_ms(m.group(1)) if m else float("nan")
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    rps = float(m.group(1)) if m else 0.0
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"(\d+) requests in", text)
    if not m or int(m.group(1)) == 0:
        errors += 1
    print(f"{p['50']:.3f} {p['99']:.3f} {rps:.1f} {errors}")


# ---- report ----

def fmt(x, unit):
    if x != x:  # NaN
        return "n/a"
    if unit in ("MiB", ""):
        return f"{x:.1f}"
    if unit == "ms":
        return f"{x:.2f}" if x < 10 else f"{x:.0f}"
    return f"{x:,.0f}"


def ratio(a, b):
    if not b or a != a or b != b:
        return "n/a"
    return f"{a / b:.2f}"


def cmd_report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["measure"], r["size"], r["server"]), []).append(r)

    def med(measure, size, server, key):
        got = [r[key] for r in by.get((measure, size, server), []) if r.get(key) == r.get(key)]
        return statistics.median(got) if got else float("nan")

    def spread(measure, size, server, key, unit):
        """The median, with (min-max) when there were several rounds."""
        got = [r[key] for r in by.get((measure, size, server), []) if r.get(key) == r.get(key)]
        if not got:
            return "n/a"
        text = fmt(statistics.median(got), unit)
        if len(got) > 1:
            text += f" ({fmt(min(got), unit)}-{fmt(max(got), unit)})"
        return text

    def rounds(measure, size, server):
        return len(by.get((measure, size, server), []))

    measures = []
    for r in rows:
        if r["measure"] not in measures:
            measures.append(r["measure"])
    titles = {r["measure"]: r.get("title", r["measure"]) for r in rows}
    kinds = {r["measure"]: r.get("kind", "wrk") for r in rows}
    size_names = {r["measure"]: r.get("size_name", "size") for r in rows}
    units = {r["measure"]: r.get("unit", "") for r in rows}
    for measure in measures:
        sizes = sorted({r["size"] for r in rows if r["measure"] == measure})
        servers = []
        for r in rows:
            if r["measure"] == measure and r["server"] not in servers:
                servers.append(r["server"])
        peer = next((s for s in servers if s.startswith("distribution")), None)
        print(f"**{titles[measure]}**\n")
        if kinds[measure] == "value":
            unit = units[measure]
            head = [size_names[measure]] + [f"{s} ({unit})" if unit else s for s in servers]
            if peer:
                head += [f"{s}/{peer}" for s in servers if s != peer]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for size in sizes:
                vals = {s: med(measure, size, s, "rps") for s in servers}
                cells = [f"{size:,}"] + [spread(measure, size, s, "rps", unit) for s in servers]
                if peer:
                    cells += [ratio(vals[s], vals[peer]) for s in servers if s != peer]
                print("| " + " | ".join(cells) + " |")
        else:
            head = [size_names[measure]]
            for s in servers:
                head += [f"{s} p50 / p99 (ms)", f"{s} req/s (min-max)"]
            if peer:
                head += [f"req/s {s}/{peer}" for s in servers if s != peer]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for size in sizes:
                cells = [f"{size:,}"]
                rps = {}
                for s in servers:
                    p50, p99 = med(measure, size, s, "p50_ms"), med(measure, size, s, "p99_ms")
                    rps[s] = med(measure, size, s, "rps")
                    cells += [f"{fmt(p50, 'ms')} / {fmt(p99, 'ms')}", spread(measure, size, s, "rps", "n")]
                if peer:
                    cells += [ratio(rps[s], rps[peer]) for s in servers if s != peer]
                print("| " + " | ".join(cells) + " |")
        n = max(rounds(measure, size, s) for size in sizes for s in servers)
        note = rows[[r["measure"] for r in rows].index(measure)].get("note")
        print(f"\n{n} round(s): medians, (min-max) over the rounds; ratios of medians."
              + (f" {note}" if note else "") + "\n")
    manifest_ratios(rows, med)


def manifest_ratios(rows, med):
    """The manifest GET's req/s ratios that the tables only hold apart:
    authenticated over anonymous for each server, and each of entrepot's other
    read caches over its default one."""
    def servers(measure):
        found = []
        for r in rows:
            if r["measure"] == measure and r["server"] not in found:
                found.append(r["server"])
        return found
    anon, auth = servers("manifest-anon"), servers("manifest-auth")
    cols = []
    for u in auth:
        base = u.rsplit(" ", 1)[0]
        if base in anon:
            cols.append((f"{u} / {base}", ("manifest-auth", u), ("manifest-anon", base)))
    for v in anon:
        if v.startswith("entrepot ") and "entrepot" in anon:
            cols.append((f"{v} / entrepot", ("manifest-anon", v), ("manifest-anon", "entrepot")))
            for u in auth:
                method = u.rsplit(" ", 1)[-1]
                if u == f"{v} {method}" and f"entrepot {method}" in auth:
                    cols.append((f"{u} / entrepot {method}", ("manifest-auth", u),
                                 ("manifest-auth", f"entrepot {method}")))
    if not cols:
        return
    sizes = sorted({r["size"] for r in rows if r["measure"] == "manifest-anon"})
    print("**Manifest GET by a random tag: ratios of the req/s medians above**\n")
    print("| tags | " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for size in sizes:
        cells = [ratio(med(a[0], size, a[1], "rps"), med(b[0], size, b[1], "rps"))
                 for _, a, b in cols]
        print(f"| {size:,} | " + " | ".join(cells) + " |")
    print()


def main(argv):
    commands = {
        "push": (cmd_push, 3), "tags": (cmd_tags, 6), "repos": (cmd_repos, 6),
        "put-rate": (cmd_put_rate, 5), "untag": (cmd_untag, 4), "check-tags": (cmd_check_tags, 3),
        "admin-pages": (cmd_admin_pages, 2), "hold": (cmd_hold, 3), "hold-upload": (cmd_hold_upload, 4), "wrk-parse": (cmd_wrk_parse, 1),
        "report": (cmd_report, 1),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    commands[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
