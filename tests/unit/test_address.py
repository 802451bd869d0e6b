import pytest
from hypothesis import given
from hypothesis import strategies as st

from sriovctl.errors import UsageError
from sriovctl.pci.address import PciAddress, vf_address


@pytest.mark.parametrize("text", ["0000:0b:10.0", "0b:10.0", "pci_0000_0b_10_0", "0000:0B:10.0"])
def test_forms_parse_to_the_same_address(text: str) -> None:
    a = PciAddress.parse(text)
    assert (a.domain, a.bus, a.slot, a.function) == (0, 0x0B, 0x10, 0)
    assert str(a) == "0000:0b:10.0"
    assert a.short == "0b:10.0"
    assert a.nodedev_name == "pci_0000_0b_10_0"


@pytest.mark.parametrize("text", ["", "0b:10", "0b:10.8", "0b:20.0", "100:00.0", "xx:00.0", "pci_0000_0b_10",
                                  "0000:0b:10.0/..", "../0b:10.0"])
def test_malformed_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as e:
        PciAddress.parse(text)
    assert "PCI address" in e.value.message or "not a PCI address" in e.value.message


def test_vf_addresses_of_the_reference_82576() -> None:
    # PF 0b:00.0, offset 128, stride 2 -> 0b:10.0, 0b:10.2 ... (PCIe SR-IOV routing-ID arithmetic)
    pf = PciAddress.parse("0b:00.0")
    assert [vf_address(pf, 128, 2, i).short for i in range(3)] == ["0b:10.0", "0b:10.2", "0b:10.4"]


def test_routing_id_overflow_is_refused() -> None:
    with pytest.raises(ValueError, match="beyond 0xffff"):
        vf_address(PciAddress.parse("ff:1f.7"), 8, 1, 0)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0x1F), st.integers(0, 7))
def test_round_trip(domain: int, bus: int, slot: int, fn: int) -> None:
    a = PciAddress(domain, bus, slot, fn)
    assert PciAddress.parse(str(a)) == a
    assert PciAddress.parse(a.nodedev_name) == a
    assert PciAddress.from_routing_id(domain, a.routing_id) == a
