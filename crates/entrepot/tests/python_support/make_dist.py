"""Write tiny Python distributions for the tests, without any build tool.

usage: make_dist.py OUTDIR KIND NAME VERSION [REQUIRES ...]
KIND is "wheel" (a pure-Python wheel) or "sdist" (a .tar.gz whose in-tree
PEP 517 backend builds the wheel with the standard library only, so installing
it needs nothing from any index).
"""

import base64
import hashlib
import io
import os
import sys
import tarfile
import zipfile


def metadata(name, version, requires):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             "Summary: a test fixture", "Requires-Python: >=3.7"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\nA test fixture.\n"


def module(name, version):
    return f'__version__ = "{version}"\nNAME = "{name}"\n'


def wheel_bytes(name, version, requires):
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": module(name, version).encode(),
        f"{info}/METADATA": metadata(name, version, requires).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: make_dist\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()


BACKEND = '''
import base64, hashlib, io, os, zipfile
NAME = {name!r}
VERSION = {version!r}
REQUIRES = {requires!r}

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = NAME.replace("-", "_")
    info = f"{{dist}}-{{VERSION}}.dist-info"
    with open("PKG-INFO", "rb") as f:
        meta = f.read()
    with open(os.path.join(dist, "__init__.py"), "rb") as f:
        init = f.read()
    files = {{f"{{dist}}/__init__.py": init, f"{{info}}/METADATA": meta,
             f"{{info}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{info}}/RECORD,,")
    files[f"{{info}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{{dist}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return name
'''


def sdist_bytes(name, version, requires):
    dist = name.replace("-", "_")
    root = f"{dist}-{version}"
    files = {
        f"{root}/PKG-INFO": metadata(name, version, requires).encode(),
        f"{root}/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        f"{root}/backend.py": BACKEND.format(name=name, version=version, requires=requires).encode(),
        f"{root}/{dist}/__init__.py": module(name, version).encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for path, data in files.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return f"{root}.tar.gz", buf.getvalue()


def main():
    out, kind, name, version, *requires = sys.argv[1:]
    make = wheel_bytes if kind == "wheel" else sdist_bytes
    filename, data = make(name, version, requires)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, filename), "wb") as f:
        f.write(data)
    print(filename)


main()
