#!/usr/bin/env bash
# Install the Debian packages Parley's tests use for real: Chromium (browser tests) and ffmpeg (ffprobe, an RTMP
# listener). Needs root; without root it says what is missing and the tests that need it say so when skipped.
set -euo pipefail
pkgs=()
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v ffprobe >/dev/null 2>&1 || pkgs+=(ffmpeg)
fc-list 2>/dev/null | grep -qi dejavu || pkgs+=(fonts-dejavu-core)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: not root; missing Debian packages: ${pkgs[*]} (tests needing them will be skipped with a reason)"
  exit 0
fi
echo "system-deps: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
