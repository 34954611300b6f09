"""The command lines a person types: filerepod --check-config on good and
broken files, and filerepo migrate / schema against the real catalog."""

import json
import os
import subprocess
import sys
import tempfile

from harness import (binary, check, drop_database, fresh_database, load_services_env, psql,
                     schema_version, write_config)



def run(*args, env=None):
    return subprocess.run(list(args), capture_output=True, text=True, env=env)


def main():
    env = load_services_env()
    known = schema_version()
    secret = open(env["XMPP_COMPONENT_SECRET_FILE"]).read().strip()
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good.json")
        db = fresh_database(env)
        try:
            write_config(good, env, db, os.path.join(tmp, "state"))

            r = run(binary("filerepod"), "--check-config", good)
            check(r.returncode == 0 and r.stdout.strip() == f"{good}: valid",
                  f"good config: {r.returncode} {r.stdout} {r.stderr}")
            check(secret not in r.stdout + r.stderr, "the secret was printed")

            # A broken file: each problem named with the file and the key.
            bad = os.path.join(tmp, "bad.json")
            with open(bad, "w") as f:
                f.write('{ "xmpp": { "component": "files.localhost", "port": "5347",\n'
                        '            "secret": "inline-secret-value" },\n'
                        '  "stat_dir": "/var/lib/filerepo" }\n')
            r = run(binary("filerepod"), "--check-config", bad)
            check(r.returncode == 78, f"exit status {r.returncode} for a bad config")
            lines = r.stderr.splitlines()
            check(any(f'{bad}: key "xmpp.port": expected an integer' in l for l in lines),
                  f"xmpp.port not named:\n{r.stderr}")
            check(any(f'{bad}: key "stat_dir": unknown key' in l for l in lines),
                  f"stat_dir not named:\n{r.stderr}")
            check(any(f'{bad}: key "xmpp.secret": secrets are not accepted' in l for l in lines),
                  f"inline secret not refused:\n{r.stderr}")
            check("inline-secret-value" not in r.stderr + r.stdout, "inline secret echoed")
            print(r.stderr, end="")

            # Starting with it fails the same way, before touching anything.
            r = run(binary("filerepod"), "-c", bad)
            check(r.returncode == 78 and 'key "xmpp.port"' in r.stderr, "filerepod -c bad")

            # Syntax errors say where.
            with open(bad, "w") as f:
                f.write('{\n  "xmpp": {\n    "component": "files.localhost"\n    "port": 1\n}\n')
            r = run(binary("filerepod"), "--check-config", bad)
            check(r.returncode == 78 and f"{bad}: line 4, column" in r.stderr,
                  f"syntax error position: {r.stderr}")

            # --help-config lists every key, and the README documents each.
            r = run(binary("filerepod"), "--help-config")
            keys = [line.split()[0] for line in r.stdout.splitlines()]
            check(r.returncode == 0 and "xmpp.component" in keys, f"--help-config: {r.stdout}")
            readme = open(os.path.join(os.environ["FILEREPO_SOURCE_DIR"], "README.md")).read()
            missing = [k for k in keys if f"| `{k}` |" not in readme]
            check(not missing, f"keys missing from the README's reference: {missing}")

            # filerepo migrate, twice; schema before and after.
            r = run(binary("filerepo"), "-c", good, "schema", "--json")
            check(r.returncode == 0 and json.loads(r.stdout) == {"catalog": 0, "known": known},
                  f"schema before: {r.stdout} {r.stderr}")
            r = run(binary("filerepo"), "-c", good, "migrate")
            check(r.returncode == 0 and f"applied {known} migration" in r.stdout,
                  f"first migrate: {r.stdout} {r.stderr}")
            r = run(binary("filerepo"), "-c", good, "migrate", "--json")
            check(r.returncode == 0 and json.loads(r.stdout) == {"applied": 0, "version": known},
                  f"second migrate: {r.stdout} {r.stderr}")
            check(psql(env, db, "SELECT count(*) FROM schema_migration") == [str(known)],
                  "one row per migration")

            # The CLI does not need the component secret.
            cli_only = os.path.join(tmp, "cli.json")
            with open(good) as f:
                text = f.read().replace(env["XMPP_COMPONENT_SECRET_FILE"], "/nonexistent/secret")
            with open(cli_only, "w") as f:
                f.write(text)
            r = run(binary("filerepo"), "-c", cli_only, "schema")
            check(r.returncode == 0 and f"catalog schema version {known}" in r.stdout,
                  f"CLI without the component secret: {r.stdout} {r.stderr}")

            # A catalog newer than this binary: refused, by both programs.
            psql(env, db, "INSERT INTO schema_migration (version, name) VALUES (999, 'future')")
            r = run(binary("filerepo"), "-c", good, "migrate")
            check(r.returncode != 0 and "newer than this filerepo knows" in r.stderr,
                  f"newer schema: {r.stdout} {r.stderr}")
            r = run(binary("filerepod"), "-c", good)
            check(r.returncode == 1 and "newer than this filerepo knows" in r.stderr,
                  f"filerepod on a newer schema: {r.returncode} {r.stderr}")

            # Unreachable catalog: a clear message and its own exit status.
            nowhere = os.path.join(tmp, "nowhere.json")
            with open(good) as f:
                text = f.read().replace(f"host={env['PGHOST']}", "host=/nonexistent")
            with open(nowhere, "w") as f:
                f.write(text)
            r = run(binary("filerepo"), "-c", nowhere, "schema")
            check(r.returncode == 69 and "cannot reach the catalog" in r.stderr,
                  f"unreachable catalog: {r.returncode} {r.stderr}")
        finally:
            drop_database(env, db)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
