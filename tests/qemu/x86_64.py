# SPDX-License-Identifier: GPL-2.0
#
# QEMU configuration for kunit.py (--qemu_config): x86_64 with 2 vCPUs on
# 2 NUMA nodes, 4 GiB, and `-cpu max` so that the guest has pdpe1gb (1 GiB
# pages, needed for PUD mappings).  The accelerator is chosen by the qemu
# wrapper that scripts/kunit.sh puts first in PATH: KVM where it works,
# multi-threaded TCG elsewhere.
from ..qemu_config import QemuArchParams

QEMU_ARCH = QemuArchParams(linux_arch='x86_64',
			   kconfig='''
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y''',
			   qemu_arch='x86_64',
			   kernel_path='arch/x86/boot/bzImage',
			   kernel_command_line='console=ttyS0',
			   extra_qemu_params=[
				   '-bios', 'qboot.rom',
				   '-cpu', 'max',
				   '-smp', '2',
				   '-m', '4G',
				   '-object', 'memory-backend-ram,id=m0,size=2G',
				   '-object', 'memory-backend-ram,id=m1,size=2G',
				   '-numa', 'node,nodeid=0,cpus=0,memdev=m0',
				   '-numa', 'node,nodeid=1,cpus=1,memdev=m1',
			   ])
