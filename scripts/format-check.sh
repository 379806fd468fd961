#!/usr/bin/env bash
# Fails if any Swift file departs from .swift-format. Fix with:
#   swift format --in-place --recursive --parallel Sources Tests Package.swift
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict --recursive --parallel Sources Tests Package.swift
echo "format: ok"
