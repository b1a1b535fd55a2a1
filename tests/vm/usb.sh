#!/usr/bin/env bash
# vm: --devices xhci-ccid:rp:hotplug:card --mem 1024
# The USB session end to end: bulkhead's xhci driver serves QEMU's usb-ccid
# reader as a USB session to the ccid class driver (its policy names
# 08e6:4433), which serves the card as a Smartcard session to bulkhead-apdu:
# ATR and APDUs go xhci -> usb session -> ccid -> smartcard session -> apdu.
# A second client asking for the reader is refused; a hostile client gets a
# keyboard plugged in through QEMU's monitor and asks for what it must not
# get, while the ccid driver is served on. Then the xhci driver is killed
# (the ccid driver sees a hang-up and reconnects), the ccid driver is killed
# (the reader is free for its restart), the reader is unplugged
# (a hang-up again) and plugged in empty, and a card is inserted and removed
# (RDR_to_PC_NotifySlotChange).
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/usb-test.conf
log=$WORK/usb-test.log
{
	conf_core
	conf_xhci "restart = on-failure"
	conf_component ccid "exec = $BUILD/drivers/ccid/bulkhead-ccid" \
		"session = usb xhci 08e6:4433" "provides = smartcard" "restart = on-failure" \
		"backoff_ms = 100" "backoff_max_ms = 500" "watchdog_ms = 8000"
	conf_component apdu "exec = $BUILD/tests/bulkhead-apdu" "args = --count 10 --loop 1500" \
		"session = smartcard ccid" "restart = on-failure" "backoff_ms = 200"
	conf_component usb-second "exec = $BUILD/tests/bulkhead-usb-hostile" "args = --second" \
		"session = usb xhci 08e6:4433" "restart = never" "backoff_ms = 100" "backoff_max_ms = 500"
	conf_component usb-hostile "exec = $BUILD/tests/bulkhead-usb-hostile" \
		"session = usb xhci 0627:0001" "restart = never" "backoff_ms = 100" "backoff_max_ms = 500"
} >"$conf"

start_core "$conf" "$log" || { result usb_core_start 1 "core did not start"; exit 1; }
t_start=$SECONDS

# a component's lines, without the prefix
load() { load_lines "$log" "$1| "; }

if ! wait_for "$log" "apdu\| apdu: [0-9]+ exchanges" 60; then
	result usb_session_setup 1 "no APDU exchanged in 60 s"
	stop_core
	echo "---- core log ----"
	cat "$log"
	exit 1
fi
load xhci
grant=$(pick "^xhci: usb: granted 08e6:4433 .* to ccid by policy '08e6:4433'")
load ccid
sess=$(pick "^ccid: USB session 1: 08e6:4433")
cfg=$(pick "^ccid: GET_DESCRIPTOR\(configuration\)")
[[ -n $grant && $sess == *"USB 1.10, class 0x00"* ]]
result usb_session_setup $? "${grant#xhci: usb: }; ${sess:-ccid has no session}; ${cfg#ccid: }"

desc=$(pick "^ccid: CCID [0-9]")
[[ $desc == *"bulk IN 0x82, bulk OUT 0x03, interrupt IN 0x81"* ]]
result usb_ccid_class_descriptor $? "${desc:-no class descriptor}"

status=$(pick "^ccid: GetSlotStatus -> ")
atr=$(pick "^ccid: IccPowerOn -> RDR_to_PC_DataBlock: ATR ")
atr_hex=$(grep -oE 'ATR [0-9a-f]+' <<<"$atr" | head -1)
load apdu
seen=$(pick "^apdu: (setup|status): card present, ATR ")
[[ -n $atr_hex && $seen == *"$atr_hex"* ]]
result usb_atr $? "${status#ccid: }; ${atr#ccid: }; apdu tool: ${seen#apdu: }"

ex=$(pick "^apdu: > [0-9a-f]+ < [0-9a-f]+ \(SW ")
rtt=$(pick "^apdu: [0-9]+ exchanges: mean")
[[ -n $ex ]]
result usb_apdu $? "${ex#apdu: }; ${rtt#apdu: }"

# a second client for the reader the ccid driver holds
wait_for "$log" "usb-second\| usb-hostile: check second_client_refused" 40
load usb-second
sec=$(pick "^usb-hostile: check second_client_refused ")
load xhci
why=$(pick "^xhci: usb: refused a session from usb-second: ")
[[ $sec == *PASS* && $why == *"granted to ccid"* ]]
sec=${sec#usb-hostile: check second_client_refused }
result usb_second_client_refused $? "${sec#PASS }; driver: ${why#xhci: usb: }"

# QEMU's monitor is at the other end of the pci-serial port (1b36:0002)
monfd=
monitor_open || true
said() { tr -c '[:print:]' ' ' <"$WORK/monitor.out" | tr -s ' '; }

# the hostile client gets a keyboard (QEMU's usb-kbd, 0627:0001) of its own
load apdu
n_ex=$(cnt "^apdu: [0-9]+ exchanges")
monitor "device_add usb-kbd,bus=xhci0.0,id=kbd0"
wait_for "$log" "usb-hostile\| usb-hostile: done" 40
load usb-hostile
for t in granted config_read no_such_endpoint bad_endpoint_address wrong_type beyond_endpoint_limit \
	offset_outside length_outside offset_wraps beyond_slot set_address set_configuration \
	wlength_lies no_such_interface unknown_op cancel_nothing still_served device_control \
	cancel_in_flight control_stall garbage_ends_session; do
	l=$(pick "^usb-hostile: check $t ")
	[[ $l == "usb-hostile: check $t PASS "* ]]
	rc=$?
	l=${l#usb-hostile: check $t }
	l=${l#PASS }
	l=${l#FAIL }
	result "usb_hostile_$t" $rc "${l:-no verdict; monitor: $(said | tail -c 160)}"
done
# meanwhile the ccid driver was served on: the same driver, its session never ended
load apdu
wait_for_count "$log" "apdu\| apdu: [0-9]+ exchanges" $((n_ex + 2)) 20
load apdu
after=$(pick "^apdu: [0-9]+ exchanges" $((n_ex + 2)))
load xhci
ended=$(cnt "^xhci: usb: session of ccid ended")
refused=$(cnt "^xhci: usb: usb-hostile: request [0-9]+ .* refused: ")
kbd=$(pick "^xhci: usb: session of usb-hostile ended")
starts=$(grep -c 'started "xhci"' "$log")
[[ -n $after && $ended == 0 && $starts == 1 ]]
result usb_driver_still_serving $? "driver refused $refused requests of usb-hostile and ended its session (${kbd#xhci: usb: }); ccid's session intact, apdu after: ${after#apdu: }"

# the xhci driver killed: core restarts it, the ccid driver sees a hang-up and reconnects
pid=$(field xhci pid)
load apdu
n_ex=$(cnt "^apdu: [0-9]+ exchanges")
t0=$SECONDS
kill -KILL "$pid"
wait_for "$log" "ccid\| ccid: USB session 2: " 40
wait_for_count "$log" "apdu\| apdu: [0-9]+ exchanges" $((n_ex + 1)) 30
load ccid
lost=$(pick "^ccid: reader lost")
again=$(pick "^ccid: USB session 2: ")
atr2=$(pick "^ccid: IccPowerOn -> RDR_to_PC_DataBlock: ATR " 2)
load apdu
ex2=$(pick "^apdu: [0-9]+ exchanges" $((n_ex + 1)))
[[ -n $lost && -n $again && -n $ex2 ]]
result usb_driver_restart $? "killed xhci pid $pid; ccid: ${lost#ccid: }; ${again#ccid: }; after $((SECONDS - t0)) s: ${ex2#apdu: }"

# the ccid driver killed: the xhci driver ends its session (the reader is free again),
# the restarted ccid driver gets it, and the apdu tool reconnects to the new one
cpid=$(field ccid pid)
load apdu
n_ex=$(cnt "^apdu: [0-9]+ exchanges")
load ccid
n_s1=$(cnt "^ccid: USB session 1: ")
t0=$SECONDS
kill -KILL "$cpid"
wait_for_count "$log" "ccid\| ccid: USB session 1: " $((n_s1 + 1)) 30
wait_for_count "$log" "apdu\| apdu: [0-9]+ exchanges" $((n_ex + 1)) 30
load xhci
freed=$(pick "^xhci: usb: session of ccid ended")
load ccid
back=$(pick "^ccid: USB session 1: " $((n_s1 + 1)))
load apdu
re=$(pick "^apdu: hang-up from the smartcard server")
ex3=$(pick "^apdu: [0-9]+ exchanges" $((n_ex + 1)))
[[ -n $freed && -n $back && -n $re && -n $ex3 ]]
result usb_client_restart $? "killed ccid pid $cpid; xhci: ${freed#xhci: usb: }; new ccid: ${back#ccid: }; apdu: ${re#apdu: }; after $((SECONDS - t0)) s: ${ex3#apdu: }"

if [ -n "$monfd" ]; then
	# the emulated card's NSS database, for inserting a card later
	monitor "qom-list /machine/peripheral-anon"
	sleep 1
	card=$(said | grep -oE 'device\[[0-9]+\] \(child<ccid-card-emulated>\)' | tail -1 | cut -d' ' -f1)
	db=
	if [ -n "$card" ]; then
		monitor "qom-get /machine/peripheral-anon/$card db"
		sleep 1
		db=$(said | grep -oE 'sql:[^ ]*ccid-db' | tail -1)
	fi

	# hot unplug of the reader: its session ends, the ccid driver sees a hang-up
	load ccid
	n_lost=$(cnt "^ccid: reader lost")
	monitor "device_del ccid0"
	wait_for_count "$log" "ccid\| ccid: reader lost" $((n_lost + 1)) 15
	load xhci
	unpl=$(pick "^xhci: usb: 08e6:4433 of ccid unplugged: ending its session")
	load ccid
	lost=$(pick "^ccid: reader lost" $((n_lost + 1)))
	[[ -n $unpl && $lost == *"hung up"* ]]
	result usb_hot_unplug_hangup $? "device_del ccid0: driver: ${unpl#xhci: usb: }; ccid: ${lost#ccid: }"

	# plugged in again, empty; then a card inserted and removed
	if [ -n "$db" ]; then
		load ccid
		n_status=$(cnt "^ccid: GetSlotStatus -> ")
		monitor "device_add usb-ccid,bus=xhci0.0,id=ccid0"
		wait_for_count "$log" "ccid\| ccid: GetSlotStatus -> " $((n_status + 1)) 30
		load ccid
		empty=$(pick "^ccid: GetSlotStatus -> " $((n_status + 1)))
		[[ $empty == *"ICC absent"* ]]
		result usb_replug_empty $? "device_add usb-ccid: ${empty#ccid: }"
		n_ins=$(cnt "^ccid: card inserted")
		monitor "device_add ccid-card-emulated,bus=ccid0.0,id=card0,backend=certificates,db=$db,cert1=cert1,cert2=cert2,cert3=cert3"
		wait_for_count "$log" "ccid\| ccid: card inserted" $((n_ins + 1)) 30
		load ccid
		note=$(pick "^ccid: RDR_to_PC_NotifySlotChange: bmSlotICCState 0x0[13]")
		ins=$(pick "^ccid: card inserted" $((n_ins + 1)))
		atr3=$(pick "^ccid: IccPowerOn -> RDR_to_PC_DataBlock: ATR " 3)
		[[ -n $ins && -n $atr3 ]]
		result usb_card_inserted $? "${note#ccid: }; ${atr3#ccid: }"
		n_rem=$(cnt "^ccid: card removed")
		monitor "device_del card0"
		wait_for_count "$log" "ccid\| ccid: card removed" $((n_rem + 1)) 20
		load ccid
		rem=$(pick "^ccid: RDR_to_PC_NotifySlotChange: bmSlotICCState 0x0[02]")
		load apdu
		gone=$(pick "^apdu: status: card absent")
		[[ -n $rem && -n $gone ]]
		result usb_card_removed $? "${rem#ccid: }; apdu tool: ${gone#apdu: }"
	else
		result usb_replug_empty 1 "no card database from the monitor: $(said | tail -c 200)"
	fi
	monitor_close
	exec {monfd}>&-
else
	result usb_hot_unplug_hangup 1 "no serial port to QEMU's monitor: run with --devices xhci-ccid:hotplug"
fi
echo "[usb.sh: $((SECONDS - t_start)) s]" >&2

stop_core
echo "---- core log ----"
cat "$log"
