/* The compiled XDP steering program, embedded so that the library needs no
   file at run time. STEER_OBJ is the object's path, given by the Makefile. */
	.section .rodata
	.balign 8
	.globl xdpload_steer_obj
	.hidden xdpload_steer_obj
xdpload_steer_obj:
	.incbin STEER_OBJ
xdpload_steer_obj_end:
	.balign 8
	.globl xdpload_steer_obj_size
	.hidden xdpload_steer_obj_size
xdpload_steer_obj_size:
	.quad xdpload_steer_obj_end - xdpload_steer_obj
/* Its stamping variant (STAMP_OBJ: steer.bpf.c built with STEER_STAMPING). */
	.balign 8
	.globl xdpload_stamp_obj
	.hidden xdpload_stamp_obj
xdpload_stamp_obj:
	.incbin STAMP_OBJ
xdpload_stamp_obj_end:
	.balign 8
	.globl xdpload_stamp_obj_size
	.hidden xdpload_stamp_obj_size
xdpload_stamp_obj_size:
	.quad xdpload_stamp_obj_end - xdpload_stamp_obj
	.section .note.GNU-stack,"",@progbits
