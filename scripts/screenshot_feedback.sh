#!/bin/sh
# Render feedback HTML pages in headless Chromium and save a PNG screenshot of each.
#
#   scripts/screenshot_feedback.sh OUT_DIR PAGE.html [PAGE.html ...]
#
# Each PAGE.html becomes OUT_DIR/PAGE.png. Pages are opened from disk (file://) with
# networking disabled, so a screenshot also shows that the page is self-contained.
# Needs chromium (Debian/Ubuntu: apt-get install -y chromium); set CHROMIUM to use another
# binary and WINDOW_SIZE (default 1100,2600) to change the viewport.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 OUT_DIR PAGE.html [PAGE.html ...]" >&2
    exit 2
fi
out_dir=$1
shift
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$browser" ]; then
    echo "$0: chromium not found (apt-get install -y chromium, or set CHROMIUM)" >&2
    exit 3
fi
mkdir -p "$out_dir"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT INT TERM
for page in "$@"; do
    if [ ! -f "$page" ]; then
        echo "$0: no such page: $page" >&2
        exit 2
    fi
    absolute=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
    shot="$out_dir/$(basename "$page" .html).png"
    "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-extensions --no-first-run --hide-scrollbars --user-data-dir="$profile" \
        --window-size="${WINDOW_SIZE:-1100,2600}" --screenshot="$shot" "file://$absolute" \
        >/dev/null 2>&1
    if [ ! -s "$shot" ]; then
        echo "$0: chromium wrote no screenshot for $page" >&2
        exit 1
    fi
    echo "$shot"
done
