/* The XDP program's object file (gre.bpf.c), built into gatewayd. */
	.section .rodata
	.balign 8
	.global gw_xdp_object
	.global gw_xdp_object_end
gw_xdp_object:
	.incbin BPF_OBJECT
gw_xdp_object_end:
	.section .note.GNU-stack,"",@progbits
