#!/bin/bash
# usage: cap2.sh top|inst : capture raw function_graph pages and the kernel's text
T=/sys/kernel/tracing
O=/mnt/out
W=/work/main/target/debug/ftt-workload
mkfifo /tmp/go
exec 3<>/tmp/go
$W --wait open /etc/hostname 1 <&3 > /dev/null &
P=$!
sleep 1
if [ "$1" = inst ]; then mkdir $T/instances/cap; D=$T/instances/cap; else D=$T; fi
echo do_sys_openat2 > $T/set_graph_function
echo $P > $D/set_ftrace_pid
echo function_graph > $D/current_tracer
echo go >&3
wait $P
echo 0 > $D/tracing_on
cat $D/trace > $O/text-default
echo 1 > $D/options/funcgraph-proc; echo 1 > $D/options/funcgraph-abstime; echo 1 > $D/options/funcgraph-tail
cat $D/trace > $O/text-all
echo 0 > $D/options/funcgraph-proc; echo 0 > $D/options/funcgraph-abstime; echo 0 > $D/options/funcgraph-tail
echo 0 > $D/options/funcgraph-duration
cat $D/trace > $O/text-nodur
echo 1 > $D/options/funcgraph-duration
for c in $D/per_cpu/cpu*; do n=$(basename $c); dd if=$c/trace_pipe_raw of=$O/raw-$n bs=4096 iflag=nonblock 2>/dev/null; done
cp $T/events/header_page $O/header_page
cp $T/events/ftrace/funcgraph_entry/format $O/entry-format
cp $T/events/ftrace/funcgraph_exit/format $O/exit-format
grep -v '^#' $O/text-default | sed -e 's/.*|  *//' -e 's/[(;{}].*//' -e 's/ \[.*//' | sort -u | grep . > /tmp/names
awk 'NR==FNR{n[$1]=1; next} ($3 in n) && ($2=="t"||$2=="T")' /tmp/names /proc/kallsyms > $O/kallsyms
wc -l /tmp/names $O/kallsyms
echo nop > $D/current_tracer; echo > $T/set_graph_function; echo > $D/set_ftrace_pid
[ "$1" = inst ] && rmdir $D
ls -la $O
