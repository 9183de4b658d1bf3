#!/bin/sh
# Install the S3-compatible test server @20minutes/s3rver (pinned version)
# from the npm registry into a fixed directory outside the repo:
#     ${RGTFS_S3RVER_DIR:-/opt/rgtfs-test/s3rver}/node_modules/@20minutes/s3rver
# tests/integration/s3server.py looks for it there (same variable).
# Idempotent and quiet: does nothing when that version is already installed.
# npm's lockfile (package-lock.json) is kept in that directory; later runs
# install from it with `npm ci`. Needs node and npm (tools/install-deps.sh).
set -eu

VERSION=4.0.4
PKG=@20minutes/s3rver
DIR="${RGTFS_S3RVER_DIR:-/opt/rgtfs-test/s3rver}"
PJ="$DIR/node_modules/$PKG/package.json"

installed() {
	[ -f "$PJ" ] && node -e '
		const p = require(process.argv[1]);
		process.exit(p.version === process.argv[2] ? 0 : 1);' "$PJ" "$VERSION" 2>/dev/null
}

for t in node npm; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "install-s3rver: $t not found (run tools/install-deps.sh)" >&2
		exit 1
	fi
done

# s3rver 4.0.4 bug: a listing with a delimiter prunes every directory more
# than one level below the prefix before it has seen an object there, so a
# prefix whose keys all lie deeper ("a/b/c.pt" with nothing directly in a/)
# is missing from CommonPrefixes. Real S3 lists it. Patched in place
# (exact text, checked), so the tests see S3's behaviour.
STORE_JS="$DIR/node_modules/$PKG/lib/stores/filesystem.js"
MARK="rgtfs: no pruning below common prefixes"
patched() { grep -qF "$MARK" "$STORE_JS" 2>/dev/null; }
patch_store() {
	node -e '
		const fs = require("fs");
		const [file, mark] = process.argv.slice(1);
		const s = fs.readFileSync(file, "utf8");
		const old = "          delimiterEnc &&\n          dirPath.slice(prefixPath.length).indexOf(delimiterEnc) !== -1\n";
		if (!s.includes(old)) { console.error("install-s3rver: " + file + ": the text to patch is not there"); process.exit(1); }
		fs.writeFileSync(file, s.replace(old, "          false /* " + mark + " */ &&\n" + old));
	' "$STORE_JS" "$MARK"
}

if installed; then
	patched || patch_store
	exit 0
fi

if ! mkdir -p "$DIR" 2>/dev/null || [ ! -w "$DIR" ]; then
	echo "install-s3rver: cannot write $DIR: run as root, or set RGTFS_S3RVER_DIR" >&2
	exit 1
fi
echo "install-s3rver: installing $PKG@$VERSION into $DIR"
cd "$DIR"
want="\"$PKG\": \"$VERSION\""
if [ ! -f package.json ] || ! grep -qF "$want" package.json; then
	# a new directory, or one made for another version: start over
	rm -rf node_modules package-lock.json
	cat >package.json <<JSON
{
  "name": "rgtfs-test-s3rver",
  "private": true,
  "description": "S3 server for the rgtfs integration tests (tools/install-s3rver.sh)",
  "dependencies": {
    $want
  }
}
JSON
fi
NPM_FLAGS="--no-audit --no-fund --no-update-notifier --loglevel=error"
# shellcheck disable=SC2086
if [ -f package-lock.json ]; then
	npm ci $NPM_FLAGS >/dev/null
else
	npm install --save-exact $NPM_FLAGS >/dev/null
fi

if ! installed; then
	echo "install-s3rver: $PKG@$VERSION is not in $DIR/node_modules after npm" >&2
	exit 1
fi
patched || patch_store
# it must start and listen (4.x needs --openssl-legacy-provider on node >= 17;
# the package ships no bin/, tests/integration/s3server.py starts lib/s3rver.js)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! node --openssl-legacy-provider -e '
	const S3rver = require(process.argv[1] + "/lib/s3rver.js");
	const s = new S3rver({ directory: process.argv[2], address: "127.0.0.1", port: 0,
		silent: true, vhostBuckets: false });
	s.run().then(() => s.close()).then(() => process.exit(0),
		(e) => { console.error(e); process.exit(1); });
	setTimeout(() => { console.error("timeout"); process.exit(1); }, 20000).unref();
	' "$DIR/node_modules/$PKG" "$tmp" >"$tmp.log" 2>&1; then
	echo "install-s3rver: $PKG@$VERSION installed in $DIR but does not start:" >&2
	cat "$tmp.log" >&2
	rm -f "$tmp.log"
	exit 1
fi
rm -f "$tmp.log"
