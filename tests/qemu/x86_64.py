# SPDX-License-Identifier: GPL-2.0
#
# QEMU configuration for kunit.py (--qemu_config).  The machine is described
# in tests/qemu/args, which scripts/guest.sh uses too.
import os

from ..qemu_config import QemuArchParams

with open(os.path.join(os.path.dirname(__file__), 'args')) as f:
	_args = [l.strip() for l in f if l.strip() and not l.startswith('#')]

QEMU_ARCH = QemuArchParams(linux_arch='x86_64',
			   kconfig='''
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y''',
			   qemu_arch='x86_64',
			   kernel_path='arch/x86/boot/bzImage',
			   kernel_command_line='console=ttyS0',
			   extra_qemu_params=_args)
