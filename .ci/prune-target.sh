# Sourced by .ci/run. Cargo never deletes old build outputs: every dependency or profile change
# leaves the previous test and example binaries behind, and with polars each is ~250 MB. A CI
# target dir kept between runs on one machine grew to 30 GB and filled the disk, and the next
# run died in the linker. This keeps the newest binary of each name and deletes the older
# ones; a binary deleted by mistake costs a relink, never a wrong result.
prune_stale_binaries() {
  local target="$1"
  [ -d "$target" ] || return 0
  local dir
  while IFS= read -r dir; do
    # Executables without a dot in their name are test, bench and example binaries
    # (`name-<hash>`); libraries (.rlib, .rmeta, .so) and dep files are left alone.
    find "$dir" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%T@ %f\n' |
      sort -rn |
      awk -v dir="$dir" '{
        name = $2; sub(/-[0-9a-f]+$/, "", name)
        if (seen[name]++) print dir "/" $2
      }' |
      xargs -r rm -f
  done < <(find "$target" -type d \( -name deps -o -name examples \) -not -path '*/build/*')
}
