#!/bin/sh
# smove report draws the timeline of a migration from the events `smove move
# --json` printed: here the events of a migration driven through a stand-in
# for a VM's control socket (fake-vm.py) and a hand-written rolled-back one.
# The SVG is well-formed XML with the phases as bands, the storage copy as a
# line, one bar per memory round (bytes, dirty rate, throttle) and the pause;
# lines that are not events are skipped; a file with none is refused.
. "$abs_top_srcdir/tests/functions.sh"
cd "$T"
export SMOVE_RUNTIME_DIR="$T/run"
/usr/bin/python3 "$abs_top_srcdir/tests/cli/fake-vm.py" "$T/run" vm1 "$T/requests" &
fake=$!
on_exit "kill $fake 2>/dev/null || :"
for _ in $(seq 100); do [ -S run/vm1.sock ] && break; sleep 0.05; done

"$SMOVE" move vm1 --to 127.0.0.1:1 --json >events.jsonl || fail "move --json"
"$SMOVE" report events.jsonl -o move.svg || fail "report"
/usr/bin/python3 - move.svg <<'PY' || fail "the SVG: $(head -c 2000 move.svg)"
import sys
import xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
assert "vm1 \u2192 127.0.0.1:1: done" in text, text
assert "downtime 12.5 ms" in text and "in 3 rounds" in text, text
groups = {}
for g in root.iter("{http://www.w3.org/2000/svg}g"):
    groups.setdefault(g.get("class"), []).append(g)
phases = [g.find("s:title", ns).text.split()[0] for g in groups["phase"]]
assert phases == ["connect", "preflight", "storage", "memory", "switchover", "commit"], phases
rounds = [g.find("s:title", ns).text for g in groups["round"]]
assert len(rounds) == 3 and rounds[0].startswith("round 1: 128 MiB in 100 ms"), rounds
assert "throttle 10%" in rounds[1] and "dirty rate 64.0 MiB/s" in rounds[1], rounds
assert "downtime 12.5 ms" in groups["pause"][0].find("s:title", ns).text
lines = {p.get("class"): p for p in root.iter("{http://www.w3.org/2000/svg}polyline")}
storage = lines["storage"].get("points").split()
assert len(storage) >= 5, storage
ys = [float(p.split(",")[1]) for p in storage]
assert ys == sorted(ys, reverse=True) and ys[0] > ys[-1], ys  # the copy only grows
assert "dirty" in lines
print("report: %d phases, %d rounds, %d storage points" % (len(phases), len(rounds), len(storage)))
PY

# A rolled-back migration, with a person's lines mixed in; standard input.
cat >rb.jsonl <<'EV'
vm2 -> desthost:4444
{"ok":true,"schema":1,"event":"started","name":"vm2"}
{"schema":1,"event":"phase","t":0.01,"phase":"connect"}
{"schema":1,"event":"phase","t":0.02,"phase":"storage","detail":"1 disk <&> \"quoted\""}
{"schema":1,"event":"progress","t":0.5,"phase":"storage","done":1048576,"total":8388608,"dirty":0,"rate":1048576,"disks":1,"synced":0}
{"schema":1,"event":"phase","t":1.2,"phase":"rollback","detail":"cancelled"}
{"schema":1,"event":"result","t":1.3,"result":"rolled-back","name":"vm2","to":"desthost:4444","error":"migration cancelled","total_s":1.3,"bytes":{"disk":1048576,"memory":0,"state":0,"total":1048576}}
EV
"$SMOVE" report - <rb.jsonl >rb.svg || fail "report from standard input"
/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])' rb.svg ||
	fail "rb.svg is not well-formed: $(cat rb.svg)"
grep -q 'vm2 &#8594;\|vm2 → desthost:4444: rolled-back' rb.svg || fail "rb.svg: no title"
grep -q 'migration cancelled' rb.svg || fail "rb.svg: no error"
grep -q '1 disk &lt;&amp;&gt; &quot;quoted&quot;' rb.svg || fail "rb.svg: details not escaped"
grep -q 'no memory rounds' rb.svg || fail "rb.svg: rounds"

# Not events: refused, naming the file; a URL is no file.
echo "hello" >none.txt
expect_status 1 "$SMOVE" report none.txt
expect_stderr "^smove report: none.txt: no migration events in it"
expect_status 1 "$SMOVE" report missing.jsonl
expect_stderr "^smove report: missing.jsonl: No such file or directory"
expect_status 2 "$SMOVE" report https://host/events.jsonl
echo PASS
