#!/usr/bin/env bash
# Builds one tinysense board image inside the build image (docker/Dockerfile), from the repository mounted at
# the current directory, and writes dist/<IMAGE>/firmware.bin, firmware.bin.sha256 and firmware.json.
#   build-firmware.sh IMAGE FOLDER [VARIANT]     e.g.  build-firmware.sh generic-s3-spiram-oct generic-s3 SPIRAM_OCT
# Run it through `tinysense build IMAGE` (or `make firmware BOARD=IMAGE`), which supplies the arguments.
set -euo pipefail

if [ $# -lt 2 ] || [ "$1" = "--help" ]; then
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
image=$1
folder=$2
variant=${3:-}
repo=$(pwd)
board_dir=$repo/boards/$folder
mpy=${MICROPYTHON_DIR:?MICROPYTHON_DIR is not set: run this inside the tinysense build image}

[ -f "$board_dir/mpconfigboard.cmake" ] || { echo "no board folder $board_dir (run from the repository root)" >&2; exit 1; }
if [ -n "$variant" ] && [ ! -f "$board_dir/mpconfigvariant_$variant.cmake" ]; then
    echo "board $folder has no variant $variant" >&2
    exit 1
fi

# A board whose image has extra C modules names them in its own usermods.cmake (which includes ours).
user_c_modules=$repo/usermods/micropython.cmake
[ -f "$board_dir/usermods.cmake" ] && user_c_modules=$board_dir/usermods.cmake

# The esp32 port names its build folder after the board folder (and variant); BUILD= must not be passed
# (it would reach the mpy-cross sub-make).
build_dir=$mpy/ports/esp32/build-$folder${variant:+-$variant}
rm -f "$build_dir/sdkconfig"   # a stale sdkconfig would win over the board's defaults

make -C "$mpy/ports/esp32" -j"$(nproc)" \
    BOARD_DIR="$board_dir" \
    ${variant:+BOARD_VARIANT="$variant"} \
    USER_C_MODULES="$user_c_modules" \
    FROZEN_MANIFEST="$board_dir/manifest.py"

out=$repo/dist/$image
mkdir -p "$out"
cp "$build_dir/firmware.bin" "$out/firmware.bin"
python3 /opt/tinysense/write_metadata.py --dist "$out" --image "$image" --folder "$folder" \
    ${variant:+--variant "$variant"} --repo "$repo" --user-c-modules "$user_c_modules" --build-dir "$build_dir"
if [ -n "${HOST_UID:-}" ]; then
    chown -R "$HOST_UID:${HOST_GID:-$HOST_UID}" "$repo/dist"
fi
echo "wrote $out/firmware.bin (flash at 0x0)"
