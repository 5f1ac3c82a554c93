#!/usr/bin/env bash
# Rebuild third_party/jaeger-ui/jaeger-ui-<tag>.tar.xz, the Jaeger UI that the local Jaeger serves.
#
# The Go module of Jaeger carries no UI assets, and CI reaches only package registries, so the
# built UI is committed. This rebuilds it from a jaeger-ui git repository (bare or not):
#
#   scripts/build-jaeger-ui.sh /path/to/jaeger-ui [v1.76.0]
#
# Needs git, node >= 20.19 (vite 7) with npm, tar (GNU) and xz. The tarball is deterministic for
# given sources, lock file and node/npm: sorted names, zero mtimes and owners, single-threaded xz,
# and a fixed build folder (plexus's layout worker embeds the absolute file URL of viz.js).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 JAEGER_UI_GIT_REPO [TAG]   (TAG defaults to v1.76.0)" >&2
    exit 2
fi
source_repo=$1
tag=${2:-v1.76.0}
here=$(cd "$(dirname "$0")/.." && pwd)
dest=$here/third_party/jaeger-ui
tarball=$dest/jaeger-ui-$tag.tar.xz
work=/tmp/lorag-jaeger-ui-build  # fixed: the path ends up in the bundle (see above)
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

commit=$(git -C "$source_repo" rev-parse "$tag^{commit}")
echo "jaeger-ui $tag ($commit): node $(node --version), npm $(npm --version)"
mkdir "$work/src"
git -C "$source_repo" archive "$tag" | tar -x -C "$work/src"
cd "$work/src"
# jaeger-ui's engines field asks for node >= 24; its build (vite 7) runs on node >= 20.19.
npm ci --no-audit --no-fund --engine-strict=false
(cd packages/jaeger-ui && npm run build)

build=packages/jaeger-ui/build
find "$build" -name '*.map' -delete  # no source maps: they would triple the size
mkdir -p "$dest"
tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode='u=rwX,go=rX' -C "$build" -cf - . | xz -9e -T1 >"$tarball.tmp"
mv "$tarball.tmp" "$tarball"
cp LICENSE "$dest/LICENSE"
echo "wrote $tarball ($(stat -c %s "$tarball") bytes)"
echo "sha256 $(sha256sum "$tarball" | cut -d' ' -f1)"
