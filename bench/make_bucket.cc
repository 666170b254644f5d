// `make_bucket ENDPOINT CREDENTIALS_FILE NAME`: creates an S3 bucket (bench/run
// --scaleout, against the throw-away Swift), signed like the controller signs.
#include <cstdio>
#include <string>

#include "controller/s3_client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: make_bucket ENDPOINT CREDENTIALS_FILE NAME\n");
    return 2;
  }
  dockyard::S3ClientOptions options;
  options.endpoint = argv[1];
  auto credentials = dockyard::LoadS3Credentials(argv[2]);
  if (!credentials.ok()) {
    std::fprintf(stderr, "make_bucket: %s\n", std::string(credentials.status().message()).c_str());
    return 1;
  }
  options.credentials = *credentials;
  const dockyard::S3Client client(options);
  auto response = client.Send("PUT", argv[3], "", {});
  if (!response.ok() || response->status != 200) {
    const absl::Status st = response.ok() ? client.ErrorOf(*response, "cannot create the bucket") : response.status();
    std::fprintf(stderr, "make_bucket: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
