#include "agent/secret_masker.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace dockyard {
namespace {

constexpr char kSecret[] = "hunter2-correct-horse";

// Feeds `text` in pieces of `step` bytes, then flushes; returns what came out.
std::string Stream(SecretMasker& masker, const std::string& text, size_t step) {
  std::string out;
  for (size_t at = 0; at < text.size(); at += step) out += masker.Feed(text.substr(at, step)).text;
  return out + masker.Flush().text;
}

TEST(SecretMasker, MasksTheValueWherePrinted) {
  SecretMasker masker({kSecret});
  EXPECT_EQ(Stream(masker, std::string("token=") + kSecret + " ok\n", 1000), "token=*** ok\n");
}

TEST(SecretMasker, MasksAValueSplitAcrossAnyTwoWrites) {
  const std::string text = std::string("a ") + kSecret + " b " + kSecret + "\n";
  for (size_t step = 1; step <= text.size(); ++step) {
    SecretMasker masker({kSecret});
    EXPECT_EQ(Stream(masker, text, step), "a *** b ***\n") << "pieces of " << step;
  }
}

TEST(SecretMasker, MasksEachLineOfAMultiLineValue) {
  const std::string key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\nGkxFhD90vcNLYLInFEX\n-----END KEY-----";
  SecretMasker masker({key});
  EXPECT_EQ(Stream(masker, "key:\n" + key + "\n", 3), "key:\n***\n");
  // Printed line by line with an indent, each line still goes.
  SecretMasker indented({key});
  EXPECT_EQ(Stream(indented, "  MIIBOgIBAAJBAKj34\n  GkxFhD90vcNLYLInFEX\n", 5), "  ***\n  ***\n");
}

TEST(SecretMasker, MasksTheBase64OfTheValueAtEveryAlignment) {
  for (const std::string prefix : {"", "x", "xy", "xyz", "user:"}) {
    SecretMasker masker({kSecret});
    const std::string encoded = absl::Base64Escape(prefix + kSecret + "\n");
    const std::string out = Stream(masker, encoded + "\n", 7);
    EXPECT_NE(out, encoded + "\n") << "prefix \"" << prefix << "\"";
    // At most the few characters that mix the secret's bits with its neighbours' stay.
    const size_t star = out.find("***");
    ASSERT_NE(star, std::string::npos) << "prefix \"" << prefix << "\"";
    EXPECT_LE(out.size() - 3 - 1, encoded.size() - (sizeof(kSecret) - 1) * 4 / 3 + 2);
  }
}

TEST(SecretMasker, LeavesOtherTextAloneAndHoldsNothingAtTheEnd) {
  SecretMasker masker({kSecret});
  const std::string text = "hunter hunting hunter2 and more hunter2-correct\n";
  EXPECT_EQ(Stream(masker, text, 4), text);
}

TEST(SecretMasker, AHeldStartOfASecretAtTheEndIsMaskedWhenLongEnough) {
  SecretMasker masker({kSecret});
  EXPECT_EQ(masker.Feed("cut: hunter2-corr").text, "cut: ");
  EXPECT_EQ(masker.Flush().text, "***");
  EXPECT_EQ(masker.Feed("end: hunt").text, "end: ");
  EXPECT_EQ(masker.Flush().text, "hunt") << "too short to be taken for a secret";
}

TEST(SecretMasker, ReportsWhereEachMaskIsAndWhatItReplaced) {
  SecretMasker masker({kSecret});
  SecretMasker::Output out = masker.Feed(std::string("ab") + kSecret + "cd" + kSecret);
  EXPECT_EQ(out.text, "ab***cd***");
  ASSERT_EQ(out.masks.size(), 2u);
  EXPECT_EQ(out.masks[0], std::make_pair(size_t{2}, sizeof(kSecret) - 1));
  EXPECT_EQ(out.masks[1], std::make_pair(size_t{7}, sizeof(kSecret) - 1));
}

TEST(SecretMasker, MaskAllMasksAWholeTextWithoutHoldingBack) {
  SecretMasker masker({kSecret});
  EXPECT_EQ(masker.MaskAll(std::string("failed: ") + kSecret), "failed: ***");
  EXPECT_EQ(masker.MaskAll("ends with hunter2-cor"), "ends with hunter2-cor");
  EXPECT_TRUE(SecretMasker().empty());
  EXPECT_EQ(SecretMasker().MaskAll(kSecret), kSecret);
}

}  // namespace
}  // namespace dockyard
