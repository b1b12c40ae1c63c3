#!/bin/bash
# checksrc.sh - banned functions and patterns in zonegate's C sources, in the
# spirit of curl's checksrc. Plain bash + POSIX awk (mawk is enough); well
# under a second on the whole tree.
#
#   scripts/checksrc.sh            check src/*/*.[ch] tests/unit/*/*.c tests/fuzz/*.c
#   scripts/checksrc.sh FILE...    check only these files
#
# Each finding is printed as `file:line: rule: text`; exit status 1 if there
# is any, 0 if none, 2 on a usage error. Rules:
#
#   banned        strcpy strcat strncat sprintf vsprintf gets strtok atoi atol
#                 atof sscanf alloca: unbounded copies, silent number parsing,
#                 hidden state or unbounded stack (use snprintf, memcpy with a
#                 checked length, strtoul/strtol with an end pointer, strtok_r).
#   assert        assert() or abort() in src/: input errors are handled and
#                 reported, never asserted (a daemon that aborts on a bad
#                 packet is a denial of service). A true invariant (programmer
#                 error, never reachable from input) may keep its assert with
#                 the comment `checksrc: invariant` on the same or the line
#                 above. Test code (tests/) may assert and abort: that is how
#                 a cmocka test or a fuzz harness reports a failure.
#   ifdef         #ifdef / #ifndef / #if defined() / #elif defined() on a macro
#                 outside the allowlist below (compile-time variants are
#                 meson options and separate files, not #ifdef forests). The
#                 header guard `#ifndef ZG_..._H` is always fine.
#   long_line     a line wider than 110 columns (tabs count to the next
#                 multiple of 8).
#
# String literals, character literals and comments are blanked before the
# banned/assert/ifdef rules look at a line, so "sprintf" in a comment or a
# log message is not a finding.
set -u

# Macros #ifdef may test. Keep it tiny.
IFDEF_ALLOW="__cplusplus __clang__ __GNUC__ __linux__ FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
MAX_COLS=110

if [ $# -gt 0 ]; then
	files=("$@")
else
	cd "$(dirname "$0")/.." || exit 2
	shopt -s nullglob
	files=(src/*/*.c src/*/*.h tests/unit/*/*.c tests/fuzz/*.c)
fi
if [ ${#files[@]} -eq 0 ]; then
	echo "checksrc.sh: no files to check" >&2
	exit 2
fi
for f in "${files[@]}"; do
	if [ ! -r "$f" ]; then
		echo "checksrc.sh: cannot read $f" >&2
		exit 2
	fi
done

awk -v allow="$IFDEF_ALLOW" -v maxcols="$MAX_COLS" '
BEGIN {
	n = split(allow, a, " ")
	for (i = 1; i <= n; i++)
		allowed[a[i]] = 1
	banned = "(strcpy|strcat|strncat|sprintf|vsprintf|gets|strtok|atoi|atol|atof|sscanf|alloca)"
	found = 0
}

FNR == 1 {
	in_comment = 0
	prev_raw = ""
	in_src = (FILENAME ~ /(^|\/)src\//)
}

function report(rule, text) {
	printf "%s:%d: %s: %s\n", FILENAME, FNR, rule, text
	found++
}

# Width of a line with tabs expanded to multiples of 8.
function width(s,    w, i, c) {
	w = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\t")
			w = w + 8 - w % 8
		else
			w++
	}
	return w
}

# The line with comments, string and character literals blanked; carries
# the open /* ... */ state across lines in in_comment.
function code_of(s,    out, p, q) {
	out = ""
	while (s != "") {
		if (in_comment) {
			p = index(s, "*/")
			if (!p)
				return out
			s = substr(s, p + 2)
			in_comment = 0
			out = out " "
			continue
		}
		# the first of: /*, //, ", or a character literal
		if (!match(s, /\/\*|\/\/|"|\047/))
			return out s
		out = out substr(s, 1, RSTART - 1)
		q = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		if (q == "//")
			return out
		if (q == "/*") {
			in_comment = 1
			continue
		}
		# a literal: skip to its unescaped closing quote
		if (q == "\"")
			p = match(s, /^([^"\\]|\\.)*"/)
		else
			p = match(s, /^([^\047\\]|\\.)*\047/)
		if (!p)
			return out q q # unterminated on this line: drop the rest
		s = substr(s, RLENGTH + 1)
		out = out q q
	}
	return out
}

{
	raw = $0
	if (length(raw) > maxcols || (index(raw, "\t") && length(raw) + 7 * gsub(/\t/, "\t", raw) > maxcols)) {
		w = width(raw)
		# test data (certificates, JSON) may be wide; the code under src/ may not
		if (w > maxcols && FILENAME ~ /(^|\/)src\//)
			report("long_line", "line is " w " columns (max " maxcols ")")
	}
	code = code_of(raw)

	rest = code
	while (match(rest, "(^|[^A-Za-z0-9_])" banned "[ \t]*\\(")) {
		hit = substr(rest, RSTART, RLENGTH)
		sub(/^[^a-z]/, "", hit)
		sub(/[ \t]*\($/, "", hit)
		report("banned", hit "() is banned")
		rest = substr(rest, RSTART + RLENGTH)
	}

	if (in_src && match(code, /(^|[^A-Za-z0-9_])(assert|abort)[ \t]*\(/) &&
	    raw !~ /checksrc: invariant/ && prev_raw !~ /checksrc: invariant/) {
		hit = substr(code, RSTART, RLENGTH)
		sub(/^[^a-z]/, "", hit)
		sub(/[ \t]*\($/, "", hit)
		report("assert", hit "() in daemon code: handle the error (or mark a true invariant with \"checksrc: invariant\")")
	}

	if (code ~ /^[ \t]*#[ \t]*(ifdef|ifndef|if|elif)[ \t(]/) {
		d = code
		sub(/^[ \t]*#[ \t]*/, "", d)
		kw = d
		sub(/[ \t(].*$/, "", kw)
		if (kw == "ifdef" || kw == "ifndef") {
			name = d
			sub(/^[a-z]+[ \t]+/, "", name)
			sub(/[^A-Za-z0-9_].*$/, "", name)
			if (!(kw == "ifndef" && name ~ /^ZG_[A-Z0-9_]*_H$/) && !(name in allowed))
				report("ifdef", "#" kw " " name " (not in the allowlist)")
		} else {
			t = d
			while (match(t, /defined[ \t]*\(?[ \t]*[A-Za-z_][A-Za-z0-9_]*/)) {
				name = substr(t, RSTART, RLENGTH)
				sub(/^defined[ \t]*\(?[ \t]*/, "", name)
				if (!(name in allowed))
					report("ifdef", "#" kw " defined(" name ") (not in the allowlist)")
				t = substr(t, RSTART + RLENGTH)
			}
		}
	}
	prev_raw = $0
}

END {
	exit found ? 1 : 0
}
' "${files[@]}"
