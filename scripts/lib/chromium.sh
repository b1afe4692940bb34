# Shared by scripts/console-screenshots and scripts/validator-e2e (sourced, not run): headless
# Chromium (Debian package `chromium`) against the console's campus page.

# Sets $browser; returns 1 when no Chromium is installed.
chromium_find() {
  browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
  [ -n "$browser" ]
}

# chromium_run PROFILE ARGS...: headless (as root: no sandbox), the page given 3 s.
chromium_run() {
  local profile=$1
  shift
  "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$profile" --timeout=3000 "$@" 2>/dev/null
}

# chromium_shot PROFILE URL PNG: a screenshot of the page, 1280 px wide.
chromium_shot() {
  chromium_run "$1" --window-size=1280,2600 --screenshot="$3" "$2" >/dev/null || true
}

# chromium_dom PROFILE URL HTML: the page's DOM once it has rendered a snapshot (the dump
# may come before the first event arrives: tried up to five times); prints the snapshot's
# version, 0 if none rendered.
chromium_dom() {
  local _
  for _ in 1 2 3 4 5; do
    chromium_run "$1" --dump-dom "$2" >"$3" || true
    grep -q 'data-version="[0-9]*"' "$3" && break
  done
  grep -o 'data-version="[0-9]*"' "$3" | grep -o '[0-9]*' || echo 0
}
