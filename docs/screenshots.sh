#!/usr/bin/env bash
# Regenerates the README's screenshots of the dinner reminder (the sample group's first mail) as a
# 320 px phone and a 600 px screen show it. Needs Debian's chromium (apt-get install chromium).
# Run from anywhere: bash docs/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/newsletter ]; then newsletter=.venv/bin/newsletter; else newsletter=newsletter; fi
# The moment is fixed so the screenshots only change when the templates or the sample data do.
at=2026-11-25T10:00
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# As members get it once `newsletter serve` is public: with the answer, choices and calendar links.
export NEWSLETTER_PUBLIC_URL=https://news.example.org
for width in 320 600; do
  "$newsletter" --dir . preview --at "$at" --out "$tmp/dinner.html" \
    --screenshot "docs/dinner-$width.png" --width "$width"
done
